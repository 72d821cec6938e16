// Package contract decides whether a new version of a module keeps the
// promises of an old one, from their manifests' schemas: Diff lists what
// changed and how much each change asks of the version number; Check says
// whether the new version number asks enough.
//
// # The rules
//
// A caller is a program written against the old version. A change is Patch
// when no caller can see it, Minor when every caller keeps working (the new
// version accepts at least what the old one did and returns at least what it
// did), Major when some caller may break. Params are what callers send, so a
// new version may accept more but not less; results are what callers read,
// so a new version may return more but not less. Fields are matched by their
// stable id (see sdk.Func), so a renamed field is told from a removed one.
//
//	change                                                         params  result
//	method added                                                   minor   -
//	method removed                                                 major   -
//	doc changed (the implementation only: no entry at all)         patch   patch
//	field added, optional                                          minor   minor
//	field added, required                                          major   minor
//	field removed                                                  major   major
//	field renamed (same id), old name kept as an alias             minor   major
//	field renamed (same id), old name not kept                     major   major
//	alias added                                                    minor   patch
//	alias removed                                                  major   patch
//	optional field made required                                   major   patch
//	required field made optional                                   minor   patch
//	default changed (or set, or cleared) on an optional field      major   patch
//	integer range widened (int32 → int64, uint8 → int16)           minor   major
//	integer range narrowed or shifted (int64 → int32, int8 → uint8) major  minor*
//	float32 → float64                                              minor   major
//	float64 → float32                                              major   minor
//	T → any                                                        minor   major
//	any → T                                                        major   minor
//	any other change of type (int ↔ float, string → bytes, …)      major   major
//	object made nullable (pointer)                                 minor   major
//	object made non-nullable                                       minor   minor
//	dynamic → typed                                                minor   minor
//	typed → dynamic                                                minor   major
//
// (*) narrowed: minor; shifted so that some new value does not fit the old
// range (int8 → uint8): major.
//
// On the result side, required, defaults and aliases do not reach callers
// (a result carries every field under its wire name), so changing them is a
// patch. A default change on params is major even though nothing fails:
// callers that leave the field out silently get another behaviour, the
// worst kind of break. A dynamic method's schema is open ("any object") and
// promises nothing that can be checked, so typing it is minor: callers that
// sent what the old version accepted keep working as long as the new schema
// says what the old code accepted, which a reviewer must still confirm. The
// other way, typed → dynamic, is major because the result loses the fields
// it promised.
//
// # Versions
//
// Versions are semantic versions (github.com/Masterminds/semver/v3, strict
// parsing). The bump from old to new allows:
//
//	1.2.3 → 2.0.0       major bump: any change
//	1.2.3 → 1.3.0       minor bump: minor and patch changes
//	1.2.3 → 1.2.4       patch bump: patch changes only
//	1.2.3 → 1.2.3       no bump: patch changes only
//	0.2.3 → 0.3.0       in 0.y.z, a minor bump may break (as Cargo and ^0.2 read it)
//	0.2.3 → 0.2.4       in 0.y.z, a patch bump allows minor changes
//	0.0.3 → 0.0.4       in 0.0.z, every bump may break
//	1.3.0-rc.1 → 1.3.0  pre-releases of one version may change anything between
//	                    them (semver §9); compare with the last release instead
//	1.2.3 → 1.3.0-rc.1  a pre-release is held to its version's bump (minor here)
//
// Build metadata (+build.5) is ignored. A new version lower than the old one
// is an error: compare in version order.
package contract

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/hotmod/hotmod/sdk"
)

// Class is how much a change asks of the version number.
type Class int

// The classes, in order.
const (
	Patch Class = iota // no caller can see it
	Minor              // every caller of the old version keeps working
	Major              // some caller of the old version may break
)

func (c Class) String() string {
	switch c {
	case Patch:
		return "patch"
	case Minor:
		return "minor"
	case Major:
		return "major"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// MarshalText writes the class as its name, for JSON.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a class name.
func (c *Class) UnmarshalText(b []byte) error {
	switch string(b) {
	case "patch":
		*c = Patch
	case "minor":
		*c = Minor
	case "major":
		*c = Major
	default:
		return fmt.Errorf("contract: %q is not a change class (patch, minor, major)", b)
	}
	return nil
}

// Change is one difference between two manifests.
type Change struct {
	// Method is the method's name.
	Method string `json:"method"`
	// Path is where in the method, e.g. "params.lines[].qty" ([] is an
	// array's element, {} a map's value); empty for the method itself.
	Path string `json:"path,omitempty"`
	// What happened, e.g. "made required".
	What  string `json:"what"`
	Class Class  `json:"class"`
}

// String is "quote params.qty: made required".
func (c Change) String() string {
	if c.Path == "" {
		return c.Method + ": " + c.What
	}
	return c.Method + " " + c.Path + ": " + c.What
}

// Diff lists the differences between two manifests of a module, methods in
// name order and fields in id order. Two manifests with the same fingerprint
// and docs have none. It does not look at names or versions; see Check.
func Diff(old, new sdk.Manifest) []Change {
	d := &differ{}
	newByName := map[string]sdk.MethodInfo{}
	for _, m := range new.Methods {
		newByName[m.Name] = m
	}
	oldByName := map[string]bool{}
	for _, om := range old.Methods {
		oldByName[om.Name] = true
		nm, ok := newByName[om.Name]
		if !ok {
			d.add(om.Name, "", Major, "method removed")
			continue
		}
		d.method(om, nm)
	}
	for _, nm := range new.Methods {
		if !oldByName[nm.Name] {
			d.add(nm.Name, "", Minor, "method added")
		}
	}
	sortChanges(d.changes)
	return d.changes
}

// sortChanges orders changes by method name, keeping the order within a
// method (params before result, fields by id).
func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Method < cs[j].Method })
}

type differ struct {
	cur     string // the method being compared
	changes []Change
}

func (d *differ) add(method, path string, c Class, format string, args ...any) {
	d.changes = append(d.changes, Change{Method: method, Path: path, What: fmt.Sprintf(format, args...), Class: c})
}

// side is what a schema describes: params (what callers send) or a result
// (what they read).
type side int

const (
	params side = iota
	result
)

// pick returns the class of a change for the side it happens on.
func (s side) pick(onParams, onResult Class) Class {
	if s == params {
		return onParams
	}
	return onResult
}

func (d *differ) method(om, nm sdk.MethodInfo) {
	d.cur = om.Name
	if om.Doc != nm.Doc {
		d.add(om.Name, "", Patch, "doc changed")
	}
	for _, s := range []struct {
		side     side
		name     string
		old, new *sdk.Schema
	}{{params, "params", om.Params, nm.Params}, {result, "result", om.Result, nm.Result}} {
		oldDyn, newDyn := s.old.IsDynamic(), s.new.IsDynamic()
		switch {
		case oldDyn && newDyn:
		case oldDyn:
			d.add(om.Name, s.name, Minor, "typed now (it was dynamic, which promised nothing checkable): %s", s.new)
		case newDyn && s.side == params:
			d.add(om.Name, s.name, Minor, "dynamic now: the method checks them itself")
		case newDyn:
			d.add(om.Name, s.name, Major, "dynamic now: callers lose the fields it promised")
		default:
			d.schema(s.name, *s.old, *s.new, s.side)
		}
	}
}

// schema compares two schemas at path.
func (d *differ) schema(path string, o, n sdk.Schema, s side) {
	if o.Type != n.Type {
		d.retyped(path, o, n, s)
		return
	}
	switch o.Type {
	case sdk.TypeObject:
		if o.Nullable != n.Nullable {
			if n.Nullable {
				d.add(d.cur, path, s.pick(Minor, Major), "may be null or left out now")
			} else {
				d.add(d.cur, path, Minor, "not nullable any more")
			}
		}
		d.object(path, o.Fields, n.Fields, s)
	case sdk.TypeArray:
		d.schema(path+"[]", items(o), items(n), s)
	case sdk.TypeMap:
		d.schema(path+"{}", items(o), items(n), s)
	}
}

// items returns the element schema of an array or map; a manifest built by
// hand may leave it out, which reads as any.
func items(s sdk.Schema) sdk.Schema {
	if s.Items == nil {
		return sdk.Schema{Type: sdk.TypeAny}
	}
	return *s.Items
}

// retyped classifies a change of type: wider is fine for params, narrower
// for results.
func (d *differ) retyped(path string, o, n sdk.Schema, s side) {
	what := fmt.Sprintf("retyped from %s to %s", &o, &n)
	oMin, oMax, oInt := sdk.IntRange(o.Type)
	nMin, nMax, nInt := sdk.IntRange(n.Type)
	var wider, narrower bool // n holds every o value; o holds every n value
	switch {
	case oInt && nInt:
		wider = nMin <= oMin && nMax >= oMax
		narrower = oMin <= nMin && oMax >= nMax
	case o.Type == sdk.TypeFloat32 && n.Type == sdk.TypeFloat64:
		wider = true
	case o.Type == sdk.TypeFloat64 && n.Type == sdk.TypeFloat32:
		narrower = true
	case n.Type == sdk.TypeAny:
		wider = true
	case o.Type == sdk.TypeAny:
		narrower = true
	}
	switch {
	case wider:
		d.add(d.cur, path, s.pick(Minor, Major), "%s (wider)", what)
	case narrower:
		d.add(d.cur, path, s.pick(Major, Minor), "%s (narrower)", what)
	default:
		d.add(d.cur, path, Major, "%s", what)
	}
}

func (d *differ) object(path string, oldFields, newFields []sdk.Field, s side) {
	newByID := map[int]sdk.Field{}
	for _, f := range newFields {
		newByID[f.ID] = f
	}
	oldIDs := map[int]bool{}
	for _, of := range oldFields {
		oldIDs[of.ID] = true
		nf, ok := newByID[of.ID]
		if !ok {
			what := "removed: callers that send it are ignored"
			if s == result {
				what = "removed: callers that read it get nothing"
			}
			d.add(d.cur, path+"."+of.Name, Major, "%s", what)
			continue
		}
		d.field(path, of, nf, s)
	}
	for _, nf := range newFields {
		if oldIDs[nf.ID] {
			continue
		}
		switch {
		case s == params && nf.Required:
			d.add(d.cur, path+"."+nf.Name, Major, "added as required: callers that do not send it fail")
		default:
			d.add(d.cur, path+"."+nf.Name, Minor, "added")
		}
	}
}

func (d *differ) field(path string, of, nf sdk.Field, s side) {
	at := path + "." + nf.Name
	if of.Name != nf.Name {
		switch {
		case s == result:
			d.add(d.cur, at, Major, "renamed from %q: results carry only the new name", of.Name)
		case contains(nf.Aliases, of.Name):
			d.add(d.cur, at, Minor, "renamed from %q, which stays an alias", of.Name)
		default:
			d.add(d.cur, at, Major, "renamed from %q without keeping it as an alias: callers that send it are ignored", of.Name)
		}
	}
	oldNames := append([]string{of.Name}, of.Aliases...)
	newNames := append([]string{nf.Name}, nf.Aliases...)
	for _, a := range of.Aliases {
		if !contains(newNames, a) {
			d.add(d.cur, at, s.pick(Major, Patch), "alias %q removed", a)
		}
	}
	for _, a := range nf.Aliases {
		if !contains(oldNames, a) {
			d.add(d.cur, at, s.pick(Minor, Patch), "alias %q added", a)
		}
	}
	switch {
	case !of.Required && nf.Required:
		d.add(d.cur, at, s.pick(Major, Patch), "made required")
	case of.Required && !nf.Required:
		d.add(d.cur, at, s.pick(Minor, Patch), "made optional")
	case !of.Required && !sameDefault(of.Default, nf.Default):
		d.add(d.cur, at, s.pick(Major, Patch), "default changed from %s to %s: callers that leave it out get another value",
			showDefault(of.Default), showDefault(nf.Default))
	}
	d.schema(at, of.Schema, nf.Schema, s)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sameDefault(a, b any) bool { return a == b } // bool, int64, float64, string or nil

func showDefault(v any) string {
	switch x := v.(type) {
	case nil:
		return "none (the zero value)"
	case string:
		return fmt.Sprintf("%q", x)
	}
	return fmt.Sprint(v)
}

// Verdict is Check's answer: what changed, what the versions allow, and
// whether that is enough.
type Verdict struct {
	Module string `json:"module"`
	Old    string `json:"old"` // version
	New    string `json:"new"` // version
	// Bump names the version change: "major", "minor", "patch", "none" or
	// "pre-release" (between pre-releases of one version).
	Bump string `json:"bump"`
	// Allows is the largest change class the bump allows.
	Allows Class `json:"allows"`
	// Needs is the largest class among the changes (patch when none).
	Needs   Class    `json:"needs"`
	Changes []Change `json:"changes"`
	OK      bool     `json:"ok"`
}

// Breaking returns the changes the bump does not allow.
func (v Verdict) Breaking() []Change {
	var out []Change
	for _, c := range v.Changes {
		if c.Class > v.Allows {
			out = append(out, c)
		}
	}
	return out
}

// Check compares two manifests of one module, old first, and decides
// whether new's version number allows its changes (see the package
// documentation for the rules). The error, when the bump is too small, is an
// sdk error with code incompatible that lists each change the bump does not
// allow on its own line; the Verdict is filled in either way. Manifests of
// two different modules, versions that do not parse, or a new version lower
// than the old one are errors with an empty Verdict.
func Check(old, new sdk.Manifest) (Verdict, error) {
	if old.Name != new.Name {
		return Verdict{}, sdk.Errorf(sdk.CodeIncompatible, "contract: the manifests are of two modules, %s and %s", old.Name, new.Name)
	}
	ov, err := semver.StrictNewVersion(old.Version)
	if err != nil {
		return Verdict{}, sdk.Errorf(sdk.CodeIncompatible, "contract: %s: old version %q: %v", old.Name, old.Version, err)
	}
	nv, err := semver.StrictNewVersion(new.Version)
	if err != nil {
		return Verdict{}, sdk.Errorf(sdk.CodeIncompatible, "contract: %s: new version %q: %v", new.Name, new.Version, err)
	}
	if nv.LessThan(ov) {
		return Verdict{}, sdk.Errorf(sdk.CodeIncompatible,
			"contract: %s: the new version %s is lower than the old %s: compare in version order", old.Name, new.Version, old.Version)
	}
	v := Verdict{Module: old.Name, Old: old.Version, New: new.Version, Changes: Diff(old, new)}
	if v.Changes == nil {
		v.Changes = []Change{}
	}
	v.Bump, v.Allows = bump(ov, nv)
	for _, c := range v.Changes {
		if c.Class > v.Needs {
			v.Needs = c.Class
		}
	}
	v.OK = v.Needs <= v.Allows
	if v.OK {
		return v, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s → %s is a %s bump, which allows %s changes; these need a %s one:",
		v.Module, v.Old, v.New, v.Bump, v.Allows, v.Needs)
	for _, c := range v.Breaking() {
		fmt.Fprintf(&b, "\n  %s (%s)", c, c.Class)
	}
	return v, &sdk.Error{Code: sdk.CodeIncompatible, Message: b.String()}
}

// bump names the change from o to n (n ≥ o) and the largest class it allows.
func bump(o, n *semver.Version) (string, Class) {
	switch {
	case n.Major() > o.Major():
		return "major", Major
	case n.Major() == 0 && o.Minor() == 0 && n.Minor() == 0 && n.Patch() > o.Patch():
		return "patch", Major // 0.0.z: every bump may break
	case n.Minor() > o.Minor():
		if n.Major() == 0 {
			return "minor", Major // 0.y.z: a minor bump may break
		}
		return "minor", Minor
	case n.Patch() > o.Patch():
		if n.Major() == 0 {
			return "patch", Minor // 0.y.z: a patch bump may add
		}
		return "patch", Patch
	case o.Prerelease() != "" && o.Prerelease() != n.Prerelease():
		return "pre-release", Major // semver §9: pre-releases promise nothing
	}
	return "none", Patch
}
