package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the running instances and the version each has applied",
		Long: `List the instance records running applications keep under P/meta/instances/
(id, host, pid, the release version and etcd revision applied, the last
rejected change, labels) and say how many run the current version.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.status(cmd.Context())
		},
	}
}

func (a *app) status(ctx context.Context) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.layout.Instances(), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)),
		clientv3.OpGet(s.layout.Version()),
	).Commit()
	if err != nil {
		return etcdprov.Wrap("read "+s.layout.Instances(), s.cli.Endpoints(), err)
	}
	var version int64
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if version, err = strconv.ParseInt(string(kvs[0].Value), 10, 64); err != nil {
			return fmt.Errorf("guard key %s holds %q, not a version number", s.layout.Version(), kvs[0].Value)
		}
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	current := 0
	if len(kvs) == 0 {
		fmt.Fprintf(a.stdout, "no instances registered under %s\n", s.layout.Instances())
	} else {
		t := newTable(a.stdout, "ID", "HOST", "PID", "VERSION", "REVISION", "UPDATED", "LABELS", "REJECTED")
		for _, kv := range kvs {
			id, _ := s.layout.ParseInstance(string(kv.Key))
			var in config.Instance
			if err := json.Unmarshal(kv.Value, &in); err != nil {
				t.row(id, "", "", "", "", "", "", "unreadable record: "+err.Error())
				continue
			}
			if in.ID == "" {
				in.ID = id
			}
			if in.AppliedVersion == version {
				current++
			}
			rejected := ""
			if in.RejectedRevision > in.AppliedRevision {
				rejected = fmt.Sprintf("revision %d: %s", in.RejectedRevision, in.RejectedError)
			}
			updated := ""
			if !in.Updated.IsZero() {
				updated = in.Updated.UTC().Format(time.RFC3339)
			}
			t.row(in.ID, in.Host, strconv.Itoa(in.PID), strconv.FormatInt(in.AppliedVersion, 10),
				strconv.FormatInt(in.AppliedRevision, 10), updated, labels(in.Labels), rejected)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "%d of %d instances run the current version %d\n", current, len(kvs), version)
	return nil
}

// labels renders labels as "k=v,k2=v2", sorted.
func labels(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}
