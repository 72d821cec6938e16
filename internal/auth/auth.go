// Package auth is who may use the daemon's HTTP API: bearer tokens with a
// role, kept hashed in the state directory.
//
// A token is "hm_" followed by 43 characters of URL-safe base64: 32 random
// bytes. Only its sha256 is stored; a request's token is hashed and the
// hash compared in constant time with every stored one.
//
// Roles are ordered: read (lists, metrics, events) < invoke (calls, and
// everything read may do) < admin (everything that changes what runs, and
// token management). An invoke token may be limited to some modules.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/internal/statedir"
)

// Role is what a token may do.
type Role int

// The roles, weakest first; a role may do everything a weaker one may.
const (
	RoleNone   Role = iota // no token needed (health checks)
	RoleRead               // lists, metrics, events
	RoleInvoke             // calls (optionally of some modules only), and read
	RoleAdmin              // everything that changes what runs, and tokens
)

func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleRead:
		return "read"
	case RoleInvoke:
		return "invoke"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole reads "read", "invoke" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return RoleRead, nil
	case "invoke":
		return RoleInvoke, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, fmt.Errorf("role %q: use read, invoke or admin", s)
}

func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err == nil {
		*r = v
	}
	return err
}

// Principal is who made a request: a token's name, role and modules.
type Principal struct {
	Name    string   `json:"name"`
	Role    Role     `json:"role"`
	Modules []string `json:"modules,omitempty"` // invoke only these; empty: all
}

// May reports whether p may use an endpoint that needs role need.
func (p *Principal) May(need Role) bool { return p.Role >= need }

// MayInvoke reports whether p may call module (a name, without version).
func (p *Principal) MayInvoke(module string) bool {
	if p.Role < RoleInvoke {
		return false
	}
	return p.Role == RoleAdmin || len(p.Modules) == 0 || slices.Contains(p.Modules, module)
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext is the principal of ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Token is a stored token: everything but the secret.
type Token struct {
	Principal
	Hash    string    `json:"sha256"` // hex sha256 of the token
	Created time.Time `json:"created"`
}

// Errors of the store.
var (
	ErrNoToken   = errors.New("no token")
	ErrBadToken  = errors.New("unknown or revoked token")
	ErrNameTaken = errors.New("a token of that name exists")
	ErrNoSuch    = errors.New("no token of that name")
)

// File is the name of the token list in the state directory, and
// AdminFile that of the local admin token (mode 0600).
const (
	File      = "tokens.json"
	AdminFile = "admin.token"
	AdminName = "local-admin"
)

// prefix starts every token, so a leaked one is easy to recognise (and to
// search for in logs and repositories).
const prefix = "hm_"

// tokenBytes is how much randomness a token carries.
const tokenBytes = 32

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Store is the token list of a state directory. Lookups read an immutable
// snapshot and take no lock; changes are written to the directory before
// they take effect.
type Store struct {
	dir  *statedir.Dir
	mu   sync.Mutex // serialises changes
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	tokens []Token
	hashes [][sha256.Size]byte // hashes[i] is tokens[i].Hash, decoded
}

// Open reads the token list of dir (none yet is an empty list).
func Open(dir *statedir.Dir) (*Store, error) {
	s := &Store{dir: dir}
	var tokens []Token
	data, err := dir.ReadFile(File)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading the token list: %w", err)
	default:
		if err := json.Unmarshal(data, &tokens); err != nil {
			return nil, fmt.Errorf("the token list %s is damaged (%v): restore it, or remove it to start with a new admin token only", dir.File(File), err)
		}
	}
	snap, err := newSnapshot(tokens)
	if err != nil {
		return nil, fmt.Errorf("the token list %s: %w", dir.File(File), err)
	}
	s.snap.Store(snap)
	return s, nil
}

func newSnapshot(tokens []Token) (*snapshot, error) {
	snap := &snapshot{tokens: tokens, hashes: make([][sha256.Size]byte, len(tokens))}
	for i, t := range tokens {
		b, err := hex.DecodeString(t.Hash)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("token %q has a malformed hash", t.Name)
		}
		copy(snap.hashes[i][:], b)
	}
	return snap, nil
}

// Check returns the principal of token. Every stored hash is compared, in
// constant time, so how long it takes says nothing about which one
// matched or how close a guess came.
func (s *Store) Check(token string) (*Principal, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	sum := sha256.Sum256([]byte(token))
	snap := s.snap.Load()
	found := -1
	for i := range snap.hashes {
		if subtle.ConstantTimeCompare(sum[:], snap.hashes[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, ErrBadToken
	}
	return &snap.tokens[found].Principal, nil
}

// List returns the stored tokens, by name.
func (s *Store) List() []Token {
	list := slices.Clone(s.snap.Load().tokens)
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// Create makes a new token for p and returns it; only its hash is kept. An
// empty name gets a generated one.
func (s *Store) Create(p Principal) (string, Token, error) {
	if p.Role < RoleRead || p.Role > RoleAdmin {
		return "", Token{}, fmt.Errorf("role %v: use read, invoke or admin", p.Role)
	}
	if len(p.Modules) > 0 && p.Role != RoleInvoke {
		return "", Token{}, fmt.Errorf("modules limit what an invoke token may call; a %v token cannot have them", p.Role)
	}
	for _, m := range p.Modules {
		if m == "" || strings.ContainsAny(m, "@/ ") {
			return "", Token{}, fmt.Errorf("module %q: give module names, without versions, separated by commas", m)
		}
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, err
	}
	secret := prefix + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load().tokens
	if p.Name == "" {
		p.Name = p.Role.String() + "-" + hex.EncodeToString(raw[:3])
	}
	if !validName.MatchString(p.Name) {
		return "", Token{}, fmt.Errorf("token name %q: use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	if slices.ContainsFunc(old, func(t Token) bool { return t.Name == p.Name }) {
		return "", Token{}, fmt.Errorf("token %q: %w; revoke it first or pick another --name", p.Name, ErrNameTaken)
	}
	t := Token{Principal: p, Hash: hex.EncodeToString(sum[:]), Created: time.Now().UTC().Truncate(time.Second)}
	if err := s.replace(append(slices.Clone(old), t)); err != nil {
		return "", Token{}, err
	}
	return secret, t, nil
}

// Revoke removes the token named name; requests with it fail from now on.
func (s *Store) Revoke(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load().tokens
	i := slices.IndexFunc(old, func(t Token) bool { return t.Name == name })
	if i < 0 {
		return fmt.Errorf("token %q: %w (hotmod token ls lists them)", name, ErrNoSuch)
	}
	return s.replace(slices.Delete(slices.Clone(old), i, i+1))
}

// replace writes tokens to the directory, then makes them current; s.mu is
// held.
func (s *Store) replace(tokens []Token) error {
	if tokens == nil {
		tokens = []Token{}
	}
	data, err := json.MarshalIndent(tokens, "", "  ")
	if err != nil {
		return err
	}
	snap, err := newSnapshot(tokens)
	if err != nil {
		return err
	}
	if err := s.dir.WriteFile(File, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the token list: %w", err)
	}
	s.snap.Store(snap)
	return nil
}

// LocalAdmin returns the admin token kept in the state directory
// (AdminFile), creating it when it is missing or no longer valid (revoked,
// or the token list was removed). created says it was made now.
func (s *Store) LocalAdmin() (token string, created bool, err error) {
	data, err := s.dir.ReadFile(AdminFile)
	if err == nil {
		token = strings.TrimSpace(string(data))
		if p, err := s.Check(token); err == nil && p.Role == RoleAdmin {
			return token, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("reading the admin token: %w", err)
	}
	// A stale entry of the same name goes first.
	if err := s.Revoke(AdminName); err != nil && !errors.Is(err, ErrNoSuch) {
		return "", false, err
	}
	token, _, err = s.Create(Principal{Name: AdminName, Role: RoleAdmin})
	if err != nil {
		return "", false, err
	}
	if err := s.dir.WriteFile(AdminFile, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("writing the admin token: %w", err)
	}
	return token, true, nil
}

// Bearer is the token of an Authorization header's "Bearer" scheme, or "".
func Bearer(header string) string {
	const scheme = "bearer "
	if len(header) > len(scheme) && strings.EqualFold(header[:len(scheme)], scheme) {
		return strings.TrimSpace(header[len(scheme):])
	}
	return ""
}
