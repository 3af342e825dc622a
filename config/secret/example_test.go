package secret_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strataconf/strata/config/secret"
)

// Seal a database password for its prefix and path, and open it again. In
// production the keys come from a key file (secret.KeyFile) or a KMS.
func Example() {
	ctx := context.Background()
	ring, err := secret.NewRing("k20261201-3fa9c2", map[string][]byte{
		"k20260601-9b01d4": bytes.Repeat([]byte{1}, 32), // an older key: still opens its values
		"k20261201-3fa9c2": bytes.Repeat([]byte{2}, 32), // the current key: seals new values
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	sealed, err := secret.Seal(ctx, ring, "/strata/payments/prod", "db.password", "hunter2")
	if err != nil {
		fmt.Println(err)
		return
	}
	id, _ := secret.KeyID(sealed)
	fmt.Println(strings.HasPrefix(sealed, secret.Prefix+"k20261201-3fa9c2:"), secret.IsSealed(sealed), id)

	plain, err := secret.Open(ctx, ring, "/strata/payments/prod", "db.password", sealed)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(plain)

	// Copied to another path, the value does not open; the error names the
	// path and the key id, not the value.
	_, err = secret.Open(ctx, ring, "/strata/payments/prod", "db.user", sealed)
	fmt.Println(errors.Is(err, secret.ErrTampered), err)
	// Output:
	// true true k20261201-3fa9c2
	// hunter2
	// true secret: db.user: key k20261201-3fa9c2: sealed value does not authenticate
}
