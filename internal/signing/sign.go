package signing

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"aead.dev/minisign"
)

// PasswordEnv names the environment variable that holds the password of an
// encrypted secret key (one made by `minisign -G` without -W).
const PasswordEnv = "HOTMOD_SIGNING_PASSWORD"

// maxKeyFile bounds a key file's size; a minisign secret key file is about
// 270 bytes.
const maxKeyFile = 4 << 10

// GenerateKey writes a new key pair: the secret key to secretPath (mode
// 0600, unencrypted, as `minisign -G -W` makes) and the public key to
// publicPath. Neither file may exist already.
func GenerateKey(secretPath, publicPath string) (minisign.PublicKey, error) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return pub, err
	}
	secret, err := priv.MarshalText()
	if err != nil {
		return pub, err
	}
	public, err := pub.MarshalText()
	if err != nil {
		return pub, err
	}
	for _, p := range []string{secretPath, publicPath} {
		if _, err := os.Lstat(p); err == nil {
			return pub, fmt.Errorf("%s already exists: remove it first, or choose another name", p)
		}
	}
	if err := writeNew(secretPath, secret, 0o600); err != nil {
		return pub, err
	}
	if err := writeNew(publicPath, append(public, '\n'), 0o644); err != nil {
		os.Remove(secretPath)
		return pub, err
	}
	return pub, nil
}

// writeNew creates path with mode perm (failing if it exists) and writes data.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// ReadSecretKey reads a minisign secret key file; an encrypted one is
// decrypted with password (an empty password is an error that says how to
// give one).
func ReadSecretKey(path, password string) (minisign.PrivateKey, error) {
	var k minisign.PrivateKey
	data, err := readLimited(path, maxKeyFile)
	if err != nil {
		return k, fmt.Errorf("reading the secret key: %w", err)
	}
	if minisign.IsEncrypted(data) {
		if password == "" {
			return k, fmt.Errorf("the secret key %s is encrypted with a password: put it in %s", path, PasswordEnv)
		}
		k, err = minisign.DecryptKey(password, data)
		if err != nil {
			return k, fmt.Errorf("decrypting the secret key %s: %v (is %s right?)", path, err, PasswordEnv)
		}
		return k, nil
	}
	if err := k.UnmarshalText(data); err != nil {
		return k, fmt.Errorf("%s is not a minisign secret key: %v", path, err)
	}
	return k, nil
}

// Sign signs the file at path for claim c and returns the signature file's
// text (a prehashed minisign signature, as `minisign -S` makes).
func Sign(key minisign.PrivateKey, path string, c Claim) ([]byte, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := minisign.NewReader(f)
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	return r.SignWithComments(key, c.Comment(), "signature from hotmod secret key "+KeyID(key.ID())), nil
}

// WriteSignature writes sig to dst atomically: under a hidden temporary
// name in dst's directory (a directory watcher ignores it), then renamed.
func WriteSignature(dst string, sig []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(sig)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return errors.Join(fmt.Errorf("writing %s", dst), err)
	}
	return nil
}
