package codec_test

import (
	"fmt"
	"time"

	"github.com/strataconf/strata/codec"
)

func ExampleBind() {
	type DB struct {
		Host    string
		Port    int
		Timeout time.Duration
	}
	type Config struct {
		Name    string
		DB      DB `koanf:"db"`
		Servers []string
	}

	// A document, with leaves typed by the parser...
	tree, err := codec.YAML.Unmarshal([]byte("name: payments\ndb:\n  host: db.internal\n  extra: 1\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... and text as etcd keys P/data/db/port and P/data/servers/0 give it.
	tree["db"].(map[string]any)["port"] = "5432"
	tree["db"].(map[string]any)["timeout"] = "15s"
	tree["servers"] = map[string]any{"0": "a:80", "1": "b:80"}

	var cfg Config
	unused, err := codec.Bind(tree, &cfg)
	fmt.Println(err)
	fmt.Printf("%+v\n", cfg)
	fmt.Println(unused)

	_, err = codec.Bind(map[string]any{"db": map[string]any{"port": "abc", "timeout": "15"}}, &cfg)
	fmt.Println(err)
	// Output:
	// <nil>
	// {Name:payments DB:{Host:db.internal Port:5432 Timeout:15s} Servers:[a:80 b:80]}
	// [db.extra]
	// cannot bind db.port: cannot parse "abc" as int; db.timeout: cannot parse "15" as duration: time: missing unit in duration "15"
}
