package sdk

// The syntax checks of names, versions and ranges. They were regular
// expressions; written out by hand, they keep package regexp (≈ 250 KB of
// code and Unicode tables) out of every wasm guest. Each keeps the name and
// the MatchString method of the expression it replaces, given in its
// comment; names_test.go checks them against those expressions.

// syntax is a hand-written check of a string's syntax.
type syntax func(string) bool

// MatchString reports whether s has the syntax.
func (f syntax) MatchString(s string) bool { return f(s) }

var (
	// `^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$`: a module name.
	nameRE = syntax(func(s string) bool {
		start := true // at the start of a dot-separated segment
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case start:
				if !isLower(c) {
					return false
				}
				start = false
			case c == '.':
				start = true
			case !isLower(c) && !isDigit(c) && c != '_' && c != '-':
				return false
			}
		}
		return len(s) > 0 && !start
	})
	// `^[A-Za-z_][A-Za-z0-9_.-]*$`: a method name.
	methodRE = syntax(func(s string) bool { return identifier(s, ".-") })
	// `^[A-Za-z_][A-Za-z0-9_-]*$`: a field's wire name or alias.
	wireNameRE = syntax(func(s string) bool { return identifier(s, "-") })
	// `^[a-z][a-z0-9_-]*$`: a capability a module needs.
	needRE = syntax(func(s string) bool {
		return len(s) > 0 && isLower(s[0]) && !containsByte(s, '.') && nameRE(s)
	})
	// `^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`:
	// a semantic version.
	versionRE = syntax(func(s string) bool {
		for part := 0; part < 3; part++ {
			n := 0
			for n < len(s) && isDigit(s[n]) {
				n++
			}
			if n == 0 || n > 1 && s[0] == '0' {
				return false
			}
			s = s[n:]
			if part < 2 {
				if len(s) == 0 || s[0] != '.' {
					return false
				}
				s = s[1:]
			}
		}
		if len(s) > 0 && s[0] == '-' {
			n := 1
			for n < len(s) && s[n] != '+' {
				n++
			}
			if !versionLabel(s[1:n]) {
				return false
			}
			s = s[n:]
		}
		if len(s) > 0 && s[0] == '+' {
			return versionLabel(s[1:])
		}
		return len(s) == 0
	})
	// `^[0-9A-Za-z.*^~<>=!,| +-]+$`: a loose check of a version range (the
	// host parses it for real, with the semver rules of
	// Masterminds/semver, and refuses a bad one at load).
	rangeRE = syntax(func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; !isLetter(c) && !isDigit(c) && !containsByte(".*^~<>=!,| +-", c) {
				return false
			}
		}
		return len(s) > 0
	})
)

// identifier reports whether s is a letter or '_', then letters, digits,
// '_' and the bytes of more.
func identifier(s, more string) bool {
	if len(s) == 0 || !isLetter(s[0]) && s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '_' && !containsByte(more, c) {
			return false
		}
	}
	return true
}

// versionLabel is `[0-9A-Za-z.-]+`.
func versionLabel(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '.' && c != '-' {
			return false
		}
	}
	return len(s) > 0
}

func isLower(c byte) bool  { return 'a' <= c && c <= 'z' }
func isLetter(c byte) bool { return isLower(c) || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
