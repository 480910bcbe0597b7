package cli

import (
	"fmt"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// validateFlag is kubectl's --validate: what becomes of the fields of a manifest that
// no cloudbox type has.
func validateFlag() cli.Flag {
	return &cli.StringFlag{Name: "validate", Value: "warn",
		Usage: "unknown fields in a manifest: warn (print each, with the field probably meant), strict (or true: refuse the manifests, write nothing) or ignore (or false: drop them silently)"}
}

// fieldValidation reads --validate.
func fieldValidation(c *cli.Context) (api.FieldValidation, error) {
	switch v := c.String("validate"); v {
	case "true":
		return api.FieldValidationStrict, nil
	case "false":
		return api.FieldValidationIgnore, nil
	default:
		fv, err := api.ParseFieldValidation(v)
		if err != nil {
			return "", fmt.Errorf("--validate %q: use strict, warn or ignore", v)
		}
		return fv, nil
	}
}

// warningPrinter prints warnings on stderr as kubectl does, "Warning: TEXT", each
// text once: a warning the CLI found in a manifest is not repeated when the server
// says it too. It is safe for concurrent use (the client calls it from its requests).
type warningPrinter struct {
	c    *cli.Context
	mu   sync.Mutex
	seen map[string]bool
}

// warnings returns the App's printer, made on first use.
func warnings(c *cli.Context) *warningPrinter {
	const key = "cloudbox.warnings"
	if p, ok := c.App.Metadata[key].(*warningPrinter); ok {
		return p
	}
	p := &warningPrinter{c: c, seen: map[string]bool{}}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[key] = p
	return p
}

func (p *warningPrinter) print(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[text] {
		return
	}
	p.seen[text] = true
	fmt.Fprintln(p.c.App.ErrWriter, "Warning: "+text)
}
