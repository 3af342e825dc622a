package tree

import (
	"strings"
	"testing"
)

// A leaf that holds a secret beneath it whole (a struct or a list given as
// one leaf of JSON text) is masked in a diff, as the secret itself is.
func TestDiffMasksLeavesHoldingSecrets(t *testing.T) {
	secrets := []string{"owner.token", "creds.*.token"}
	old := map[string]string{"owner.user": "own"}
	new := map[string]string{
		"owner":      `{"user": "own", "token": "owner-s3cr3t"}`,
		"creds":      `[{"token": "tok-s3cr3t"}]`,
		"owner.user": "own2",
	}
	for _, c := range Diff(old, new, secrets) {
		if strings.Contains(c.Old+c.New, "s3cr3t") {
			t.Errorf("%s shows a secret: %+v", c.Path, c)
		}
		if c.Path == "owner.user" && c.New != "own2" {
			t.Errorf("a value beside the secret is masked: %+v", c)
		}
	}
}
