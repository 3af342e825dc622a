package schema_test

import (
	"errors"
	"fmt"

	"github.com/strataconf/strata/schema"
)

func ExampleValidate() {
	type DB struct {
		Port     int    `koanf:"port" validate:"max=65535"`
		Password string `koanf:"password" secret:"true" validate:"min=8"`
	}
	type App struct {
		Name string `koanf:"name" validate:"required"`
		DB   DB     `koanf:"db"`
	}

	err := schema.Validate(App{DB: DB{Port: 70000, Password: "hunter2"}})
	fmt.Println(err)

	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fmt.Printf("%s %s %q secret=%v\n", f.Path, f.Rule, f.Value, f.Secret)
		}
	}
	// Output:
	// invalid config: db.password: failed min=8 (value ******); db.port: failed max=65535 (value 70000); name: failed required (value "")
	// db.password min "******" secret=true
	// db.port max "70000" secret=false
	// name required "" secret=false
}
