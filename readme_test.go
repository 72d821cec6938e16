package hotmod_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestReadmeSnippetIsTheExample fails when the README's library snippet
// (the Go block of "## Using the library") and the body of Example in
// example_test.go drift apart. Both are compared line by line, with
// indentation and blank lines dropped.
func TestReadmeSnippetIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Using the library\n")
	_, block, ok2 := strings.Cut(section, "```go\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal(`README.md has no Go block under "## Using the library"`)
	}

	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var body string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Name.Name == "Example" && fn.Recv == nil {
			body = string(src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset])
		}
	}
	if body == "" {
		t.Fatal("example_test.go has no func Example")
	}

	readmeLines, exampleLines := normalised(block), normalised(body)
	for i := range max(len(readmeLines), len(exampleLines)) {
		var r, e string
		if i < len(readmeLines) {
			r = readmeLines[i]
		}
		if i < len(exampleLines) {
			e = exampleLines[i]
		}
		if r != e {
			t.Fatalf("README.md's library snippet and Example (example_test.go) differ at line %d of the code:\nREADME:  %q\nExample: %q\n"+
				"change both: the README shows what the example runs", i+1, r, e)
		}
	}
}

// normalised returns code's lines without indentation, trailing space or
// blank lines.
func normalised(code string) []string {
	var lines []string
	for _, l := range strings.Split(code, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
