package relocate

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// registrars are standard-library functions that put a name into a registry
// of the standard library's own and panic when the name is there already.
// The standard library is shared with the host, so when a package that calls
// one while it initialises is loaded a second time under a new path (the next
// version of a module), its init panics and the load fails.
var registrars = map[string]map[string]string{
	"flag": setOf("flag redefined",
		"Bool", "BoolVar", "BoolFunc", "Duration", "DurationVar", "Float64", "Float64Var", "Func",
		"Int", "Int64", "Int64Var", "IntVar", "String", "StringVar", "TextVar", "Uint", "Uint64",
		"Uint64Var", "UintVar", "Var"),
	"net/http":     setOf("multiple registrations for a pattern", "Handle", "HandleFunc"),
	"database/sql": setOf("Register called twice for driver", "Register"),
	"encoding/gob": setOf("registering duplicate names", "Register", "RegisterName"),
}

func setOf(panicText string, names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		m[n] = panicText
	}
	return m
}

// rewrite returns src with every import of a path in moved replaced by its
// new path, and every //go:linkname target in a moved package renamed the
// same way. It reports, as a *Refusal, a call at package initialisation to
// one of the standard library's registrars. The file keeps its layout (and
// so its line numbers): only the import strings change.
func rewrite(filename string, src []byte, moved map[string]string, pkgPath string) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filename, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	if err := checkRegistrations(fset, f, pkgPath); err != nil {
		return nil, err
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			continue
		}
		if np, ok := moved[path]; ok {
			edits = append(edits, edit{fset.Position(imp.Path.Pos()).Offset, fset.Position(imp.Path.End()).Offset, strconv.Quote(np)})
		}
	}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			fields := strings.Fields(c.Text)
			if len(fields) != 3 || fields[0] != "//go:linkname" {
				continue
			}
			target := fields[2]
			dot := strings.LastIndex(target, ".")
			if dot < 0 {
				continue
			}
			np, ok := moved[target[:dot]]
			if !ok {
				continue
			}
			start := fset.Position(c.Pos()).Offset
			text := "//go:linkname " + fields[1] + " " + np + target[dot:]
			edits = append(edits, edit{start, start + len(c.Text), text})
		}
	}
	if len(edits) == 0 {
		return src, nil
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	last := 0
	for _, e := range edits {
		out.Write(src[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(src[last:])
	return out.Bytes(), nil
}

// checkRegistrations refuses a file that calls a registrar in a package-level
// variable's initialiser or in an init function.
func checkRegistrations(fset *token.FileSet, f *ast.File, pkgPath string) error {
	local := map[string]string{} // local name → registrar package
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if registrars[path] == nil {
			continue
		}
		name := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name != "_" && name != "." {
			local[name] = path
		}
	}
	if len(local) == 0 {
		return nil
	}
	var found error
	visit := func(n ast.Node) bool {
		if found != nil {
			return false
		}
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		path, ok := local[x.Name]
		if !ok {
			return true
		}
		if panicText, ok := registrars[path][sel.Sel.Name]; ok {
			found = &Refusal{
				Package: pkgPath,
				Where:   fset.Position(call.Pos()).String(),
				Reason: fmt.Sprintf("it calls %s.%s while it initialises: package %s is shared with the host, so the next version's "+
					"copy would register the same name again and panic (%q)", x.Name, sel.Sel.Name, path, panicText),
				Fix: "register at run time once (a sync.Once in a method), or use a registry of the module's own (a flag.FlagSet, an http.ServeMux), " +
					"or build the module for the wasm or process transport",
			}
		}
		return true
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			if d.Tok == token.VAR {
				ast.Inspect(d, visit)
			}
		case *ast.FuncDecl:
			if d.Recv == nil && d.Name.Name == "init" && d.Body != nil {
				ast.Inspect(d.Body, visit)
			}
		}
	}
	return found
}
