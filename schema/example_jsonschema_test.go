package schema_test

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/strataconf/strata/schema"
)

func ExampleGenerate() {
	type DB struct {
		Port     int    `koanf:"port" validate:"min=1,max=65535"`
		Password string `koanf:"password" secret:"true"`
	}
	type App struct {
		Name string `koanf:"name" validate:"required,oneof=payments billing"`
		DB   DB     `koanf:"db"`
	}
	doc, err := schema.Generate(reflect.TypeFor[App]())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(doc))
	// Output:
	// {
	//   "$schema": "https://json-schema.org/draft/2020-12/schema",
	//   "additionalProperties": false,
	//   "properties": {
	//     "db": {
	//       "additionalProperties": false,
	//       "properties": {
	//         "password": {
	//           "type": "string",
	//           "writeOnly": true,
	//           "x-secret": true
	//         },
	//         "port": {
	//           "maximum": 65535,
	//           "minimum": 1,
	//           "type": "integer"
	//         }
	//       },
	//       "required": [
	//         "port"
	//       ],
	//       "type": "object"
	//     },
	//     "name": {
	//       "enum": [
	//         "payments",
	//         "billing"
	//       ],
	//       "minLength": 1,
	//       "type": "string"
	//     }
	//   },
	//   "required": [
	//     "name",
	//     "db"
	//   ],
	//   "title": "App",
	//   "type": "object"
	// }
}

func ExampleSchema_Check() {
	type DB struct {
		Host     string `koanf:"host" validate:"required,hostname_rfc1123"`
		Port     int    `koanf:"port" validate:"min=1,max=65535"`
		Password string `koanf:"password" secret:"true" validate:"min=8"`
	}
	type App struct {
		Name    string   `koanf:"name" validate:"required"`
		DB      DB       `koanf:"db"`
		Servers []string `koanf:"servers" validate:"dive,ipv4"`
	}
	// The application publishes this document at P/meta/schema ...
	doc, err := schema.Generate(reflect.TypeFor[App]())
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... and the CLI, which does not have the type App, checks a tree with it.
	s, err := schema.Compile(doc)
	if err != nil {
		fmt.Println(err)
		return
	}
	tree := map[string]any{ // text leaves, as etcd keys P/data/db/port, P/data/servers/0 give them
		"db":      map[string]any{"host": "db.internal", "port": "70000", "password": "hunter2"},
		"servers": map[string]any{"0": "10.0.0.1", "1": "10.0.0"},
		"nmae":    "payments",
	}
	err = s.Check(tree)
	fmt.Println(err)
	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fmt.Printf("%s %s %q %q\n", f.Path, f.Rule, f.Param, f.Value)
		}
	}
	fmt.Println(s.SecretPaths())

	tree["name"], tree["servers"] = "payments", `["10.0.0.1"]`
	delete(tree, "nmae")
	tree["db"] = map[string]any{"host": "db.internal", "port": "5432", "password": "long-enough"}
	fmt.Println(s.Check(tree))
	// Output:
	// invalid config: db.password: failed minLength=8 (value ******); db.port: failed maximum=65535 (value 70000); name: failed required (value ""); nmae: failed additionalProperties (value ******); servers.1: failed format=ipv4 (value 10.0.0)
	// db.password minLength "8" "******"
	// db.port maximum "65535" "70000"
	// name required "" ""
	// nmae additionalProperties "" "******"
	// servers.1 format "ipv4" "10.0.0"
	// [db.password]
	// <nil>
}
