package auth_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/statedir"
)

func openStore(t testing.TB, dir string) *auth.Store {
	t.Helper()
	sd, err := statedir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.Open(sd)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := openStore(t, dir)
	shop, tok, err := s.Create(auth.Principal{Name: "shop", Role: auth.RoleInvoke, Modules: []string{"pricing"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(shop, "hm_") || len(shop) != 3+43 || tok.Name != "shop" {
		t.Fatalf("token %q, %+v", shop, tok)
	}
	reader, tok, err := s.Create(auth.Principal{Role: auth.RoleRead})
	if err != nil || !strings.HasPrefix(tok.Name, "read-") {
		t.Fatalf("a generated name: %+v, %v", tok, err)
	}

	p, err := s.Check(shop)
	if err != nil || p.Name != "shop" || !p.MayInvoke("pricing") || p.MayInvoke("geo") || p.May(auth.RoleAdmin) || !p.May(auth.RoleRead) {
		t.Fatalf("shop: %+v, %v", p, err)
	}
	if p, err := s.Check(reader); err != nil || p.MayInvoke("pricing") || !p.May(auth.RoleRead) {
		t.Fatalf("reader: %+v, %v", p, err)
	}
	for _, bad := range []string{"", shop[:len(shop)-1], shop + "x", "hm_" + strings.Repeat("A", 43)} {
		if _, err := s.Check(bad); err == nil {
			t.Errorf("Check(%q) passed", bad)
		}
	}

	// Only hashes reach the disk, with mode 0600; a reopened store knows
	// the same tokens.
	data, err := os.ReadFile(filepath.Join(dir, auth.File))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), shop) || strings.Contains(string(data), reader) {
		t.Fatalf("a secret in the token list:\n%s", data)
	}
	if fi, _ := os.Stat(filepath.Join(dir, auth.File)); fi.Mode().Perm() != 0o600 {
		t.Errorf("token list mode %v", fi.Mode().Perm())
	}
	again := openStore(t, dir)
	if p, err := again.Check(shop); err != nil || p.Name != "shop" || p.Modules[0] != "pricing" {
		t.Fatalf("after reopening: %+v, %v", p, err)
	}

	if err := again.Revoke("shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Check(shop); !errors.Is(err, auth.ErrBadToken) {
		t.Errorf("a revoked token: %v", err)
	}
	if err := again.Revoke("shop"); !errors.Is(err, auth.ErrNoSuch) {
		t.Errorf("revoking twice: %v", err)
	}
	if _, err := openStore(t, dir).Check(shop); err == nil {
		t.Errorf("a revoked token works after reopening")
	}
}

func TestCreateRefuses(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "state"))
	if _, _, err := s.Create(auth.Principal{Name: "a", Role: auth.RoleRead}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    auth.Principal
		want string
	}{
		{auth.Principal{Name: "a", Role: auth.RoleRead}, "exists"},
		{auth.Principal{Name: "b"}, "use read, invoke or admin"},
		{auth.Principal{Name: "c", Role: auth.RoleRead, Modules: []string{"x"}}, "cannot have them"},
		{auth.Principal{Name: "d", Role: auth.RoleInvoke, Modules: []string{"x@1.0"}}, "without versions"},
		{auth.Principal{Name: "../e", Role: auth.RoleRead}, "token name"},
	} {
		if _, _, err := s.Create(c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Create(%+v): %v, want an error with %q", c.p, err, c.want)
		}
	}
}

func TestLocalAdmin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := openStore(t, dir)
	tok, created, err := s.LocalAdmin()
	if err != nil || !created {
		t.Fatalf("first start: %v, created %v", err, created)
	}
	if fi, err := os.Stat(filepath.Join(dir, auth.AdminFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v", err)
	}
	again, created, err := openStore(t, dir).LocalAdmin()
	if err != nil || created || again != tok {
		t.Fatalf("second start: %v, created %v, same %v", err, created, again == tok)
	}
	// Revoked: the next start makes a new one.
	if err := s.Revoke(auth.AdminName); err != nil {
		t.Fatal(err)
	}
	fresh, created, err := openStore(t, dir).LocalAdmin()
	if err != nil || !created || fresh == tok {
		t.Fatalf("after revoking: %v, created %v", err, created)
	}
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer": "", "": ""} {
		if got := auth.Bearer(h); got != want {
			t.Errorf("Bearer(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestCredential(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	path, remove, err := auth.PublishCredential("127.0.0.1:7700", "hm_x")
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	// A client of localhost or [::1] reaches a daemon on 127.0.0.1 too.
	for _, addr := range []string{"127.0.0.1:7700", "localhost:7700", "[::1]:7700"} {
		if tok, err := auth.ReadCredential(addr); err != nil || tok != "hm_x" {
			t.Errorf("ReadCredential(%s) = %q, %v", addr, tok, err)
		}
	}
	if tok, _ := auth.ReadCredential("127.0.0.1:7701"); tok != "" {
		t.Errorf("another port's credential: %q", tok)
	}
	remove()
	if tok, _ := auth.ReadCredential("127.0.0.1:7700"); tok != "" {
		t.Errorf("after remove: %q", tok)
	}
}

// BenchmarkCheck is what authenticating one request costs: hashing the
// token and comparing it with every stored hash.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			s := openStore(b, filepath.Join(b.TempDir(), "state"))
			var tok string
			for range n {
				var err error
				if tok, _, err = s.Create(auth.Principal{Role: auth.RoleInvoke}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Check(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
