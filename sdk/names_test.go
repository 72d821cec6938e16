package sdk

import (
	"regexp"
	"testing"
)

// The regular expressions the hand-written checks of names.go replace.
var syntaxes = []struct {
	name  string
	check syntax
	re    *regexp.Regexp
}{
	{"nameRE", nameRE, regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$`)},
	{"methodRE", methodRE, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)},
	{"wireNameRE", wireNameRE, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)},
	{"needRE", needRE, regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)},
	{"versionRE", versionRE, regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)},
	{"rangeRE", rangeRE, regexp.MustCompile(`^[0-9A-Za-z.*^~<>=!,| +-]+$`)},
}

var syntaxSeeds = []string{"", "a", "A", "_", "0", "pricing", "acme.pricing", "acme..pricing", "acme.", ".acme", "a-b_c9",
	"Quote", "quote.v2", "_x", "x y", "é", "1.2.3", "01.2.3", "1.2", "1.2.3-rc.1", "1.2.3+build.5", "1.2.3-rc.1+b",
	"1.2.3-", "1.2.3+", "1.2.3-a+b+c", "1.2.3-+", "0.0.0", "10.20.30", "^1.2", ">=1.0, <2 || 3.x", "1.2.3\n"}

func TestSyntaxMatchesRegexp(t *testing.T) {
	for _, s := range syntaxSeeds {
		for _, c := range syntaxes {
			if got, want := c.check.MatchString(s), c.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, the regular expression says %v", c.name, s, got, want)
			}
		}
	}
}

func FuzzSyntax(f *testing.F) {
	for _, s := range syntaxSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range syntaxes {
			if got, want := c.check.MatchString(s), c.re.MatchString(s); got != want {
				t.Fatalf("%s(%q) = %v, the regular expression says %v", c.name, s, got, want)
			}
		}
	})
}
