package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

const rolesCreateLong = `Create three etcd roles for the prefix P (--prefix), each granted only what
one kind of identity needs:

  NAME-app       applications (config.Load with WithEtcd):
                   read        P/data/ (prefix; the load, the watch, and
                               reads at older revisions)
                   read        P/meta/schema, P/meta/version, P/meta/rollout
                   read-write  P/meta/instances/ (prefix; the instance record
                               of WithInstance)
                 With --app-publishes-schema, read-write P/meta/schema too:
                 an application that loads with config.WithPublishSchema
                 writes T's schema there.
  NAME-operator  operators and deploy jobs (strata set, push, edit, delete,
                 rollback, schema publish, rollout, secrets rotate; a
                 Writer[T]; rollout.Run): read-write P/ (prefix)
  NAME-auditor   auditors (strata get, history, status, schema show, watch,
                 rollout status): read P/ (prefix). It holds no decryption
                 key: give auditors no key file, and they see secrets only
                 as ****** (etcd holds only their envelopes).

NAME is --name-prefix, by default the segments of P joined by "-"
(/strata/payments/prod: strata-payments-prod). The roles are created with
etcd's auth API, which needs the root role (--user root). It is idempotent:
a role that exists is kept, the permissions it lacks are granted (or
changed, read to read-write), and any other permission it holds is listed
and kept. Bind users to the roles with etcdctl user grant-role USER ROLE.
Roles are enforced once auth is enabled (etcdctl auth enable).

--dry-run prints the roles and permissions without contacting etcd.`

// roleGrant is one permission of a role on a key or a key prefix.
type roleGrant struct {
	Perm   string `json:"permission"` // "read" or "read-write"
	Key    string `json:"key"`
	Prefix bool   `json:"prefix"`          // Key is a prefix: every key starting with it
	State  string `json:"state,omitempty"` // granted, held, changed from read, extra (kept)
}

// rolePlan is one role roles create makes.
type rolePlan struct {
	Name   string      `json:"name"`
	For    string      `json:"for"`
	State  string      `json:"state,omitempty"` // created, exists
	Grants []roleGrant `json:"permissions"`
	Extra  []roleGrant `json:"extra,omitempty"` // held beyond Grants, kept
}

func (a *app) rolesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "Create least-privilege etcd roles for applications, operators and auditors",
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.rolesCreateCommand())
	for _, c := range cmd.Commands() {
		c.SilenceErrors, c.SilenceUsage = true, true
	}
	return cmd
}

func (a *app) rolesCreateCommand() *cobra.Command {
	var dryRun, publishes bool
	var name, output string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create the application, operator and auditor roles of the prefix (--prefix)",
		Long:  rolesCreateLong,
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usagef("-o %q: want text or json", output)
			}
			if strings.Trim(a.g.prefix, "/") == "" {
				return usagef("no prefix: give --prefix P or set STRATA_PREFIX (a key prefix like /strata/app/prod)")
			}
			if err := etcdprov.CheckPrefix(a.g.prefix); err != nil {
				return usagef("--prefix: %v", err)
			}
			l := etcdprov.NewLayout(a.g.prefix)
			if cmd.Flags().Changed("name-prefix") {
				if err := checkRoleName(name); err != nil {
					return usagef("--name-prefix %q: %v", name, err)
				}
			} else {
				name = strings.ReplaceAll(strings.Trim(l.Prefix(), "/"), "/", "-")
			}
			plans := rolePlans(l, name, publishes)
			if dryRun {
				return a.printRoles(plans, l.Prefix(), output, true, true)
			}
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			s, err := a.connect(ctx, true)
			if err != nil {
				return err
			}
			defer s.close()
			for i := range plans {
				if err := createRole(ctx, s.cli, &plans[i]); err != nil {
					return etcdprov.Wrap("role "+plans[i].Name, s.cli.Endpoints(), err)
				}
			}
			enabled := true
			if st, err := s.cli.AuthStatus(ctx); err == nil {
				enabled = st.Enabled
			}
			return a.printRoles(plans, l.Prefix(), output, false, enabled)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dryRun, "dry-run", false, "print the roles and their permissions without contacting etcd")
	f.StringVar(&name, "name-prefix", "", `start of the role names: NAME-app, NAME-operator, NAME-auditor (default: the prefix's segments joined by "-")`)
	f.BoolVar(&publishes, "app-publishes-schema", false, "let the application role write P/meta/schema (config.WithPublishSchema)")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// checkRoleName refuses an empty name, and one with white space or
// control characters.
func checkRoleName(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	for _, r := range name {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return errors.New("holds white space or a control character")
		}
	}
	return nil
}

// rolePlans returns the three roles of the prefix of l.
func rolePlans(l etcdprov.Layout, name string, publishes bool) []rolePlan {
	schemaPerm := "read"
	if publishes {
		schemaPerm = "read-write"
	}
	return []rolePlan{
		{Name: name + "-app", For: "applications (config.Load)", Grants: []roleGrant{
			{Perm: "read", Key: l.Data(), Prefix: true},
			{Perm: schemaPerm, Key: l.Schema()},
			{Perm: "read", Key: l.Version()},
			{Perm: "read", Key: l.Rollout()},
			{Perm: "read-write", Key: l.Instances(), Prefix: true},
		}},
		{Name: name + "-operator", For: "operators (strata writes, rollouts, secrets rotate)", Grants: []roleGrant{
			{Perm: "read-write", Key: l.Prefix() + "/", Prefix: true},
		}},
		{Name: name + "-auditor", For: "auditors (strata get, history, status; no key file)", Grants: []roleGrant{
			{Perm: "read", Key: l.Prefix() + "/", Prefix: true},
		}},
	}
}

// permType is the etcd permission of a grant.
func (g roleGrant) permType() clientv3.PermissionType {
	if g.Perm == "read-write" {
		return clientv3.PermissionType(clientv3.PermReadWrite)
	}
	return clientv3.PermissionType(clientv3.PermRead)
}

// rangeEnd is the end of the grant's key range: "" for one key.
func (g roleGrant) rangeEnd() string {
	if g.Prefix {
		return clientv3.GetPrefixRangeEnd(g.Key)
	}
	return ""
}

// createRole creates the role of p unless it exists and grants the
// permissions it lacks, recording in p what it found and did.
func createRole(ctx context.Context, cli *clientv3.Client, p *rolePlan) error {
	var held []*authpb.Permission
	_, err := cli.RoleAdd(ctx, p.Name)
	switch {
	case err == nil:
		p.State = "created"
	case errors.Is(err, rpctypes.ErrRoleAlreadyExist):
		p.State = "exists"
		resp, err := cli.RoleGet(ctx, p.Name)
		if err != nil {
			return err
		}
		held = resp.Perm
	default:
		return err
	}
	matched := make([]bool, len(held))
	for i := range p.Grants {
		g := &p.Grants[i]
		g.State = "granted"
		for j, h := range held {
			if string(h.Key) != g.Key || string(h.RangeEnd) != g.rangeEnd() {
				continue
			}
			matched[j] = true
			switch {
			case clientv3.PermissionType(h.PermType) == g.permType():
				g.State = "held"
			default:
				g.State = "changed from " + permName(h.PermType)
			}
		}
		if g.State == "held" {
			continue
		}
		if _, err := cli.RoleGrantPermission(ctx, p.Name, g.Key, g.rangeEnd(), g.permType()); err != nil {
			return err
		}
	}
	for j, h := range held {
		if matched[j] {
			continue
		}
		x := roleGrant{Perm: permName(h.PermType), Key: string(h.Key), State: "extra (kept)"}
		switch end := string(h.RangeEnd); {
		case end == "":
		case end == clientv3.GetPrefixRangeEnd(x.Key):
			x.Prefix = true
		default:
			x.Key += " .. " + end
		}
		p.Extra = append(p.Extra, x)
	}
	return nil
}

// permName names an etcd permission type as roles create does.
func permName(t authpb.Permission_Type) string {
	switch t {
	case authpb.READ:
		return "read"
	case authpb.WRITE:
		return "write"
	}
	return "read-write"
}

// printRoles writes the roles as text or JSON.
func (a *app) printRoles(plans []rolePlan, prefix, output string, dryRun, authEnabled bool) error {
	if output == "json" {
		b, err := marshalJSON(struct {
			Prefix string     `json:"prefix"`
			DryRun bool       `json:"dry_run"`
			Roles  []rolePlan `json:"roles"`
		}{prefix, dryRun, plans})
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(b)
		return err
	}
	var rows [][]string // per permission: permission, key, scope, state
	for _, p := range plans {
		for _, g := range append(append([]roleGrant{}, p.Grants...), p.Extra...) {
			scope := ""
			if g.Prefix {
				scope = "prefix"
			}
			rows = append(rows, []string{g.Perm, showText(g.Key), scope, g.State})
		}
	}
	widths := make([]int, 4)
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, p := range plans {
		head := "role " + showText(p.Name)
		if p.State != "" {
			head += " (" + p.State + ")"
		}
		fmt.Fprintf(a.stdout, "%s: for %s\n", head, p.For)
		for range len(p.Grants) + len(p.Extra) {
			var b strings.Builder
			b.WriteString(" ")
			for i, c := range rows[0] {
				fmt.Fprintf(&b, " %-*s ", widths[i], c)
			}
			fmt.Fprintln(a.stdout, strings.TrimRight(b.String(), " "))
			rows = rows[1:]
		}
	}
	if dryRun {
		fmt.Fprintln(a.stdout, "dry run: nothing created")
		return nil
	}
	names := make([]string, len(plans))
	for i, p := range plans {
		names[i] = p.Name
	}
	fmt.Fprintf(a.stdout, "bind users to them with: etcdctl user grant-role USER %s\n", strings.Join(names, "|"))
	if !authEnabled {
		fmt.Fprintln(a.stdout, "note: authentication is not enabled on this cluster: the roles take effect after etcdctl auth enable")
	}
	return nil
}
