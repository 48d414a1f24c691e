package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kshaka-io/kshaka/proposer"
)

// output formats of the key commands.
const (
	outText = "text"
	outJSON = "json"
	outRaw  = "raw"
)

type outputFlag struct {
	format  string
	verbose bool
}

// add registers -o; get (raw) also has -o raw and --verbose.
func (o *outputFlag) add(fs *pflag.FlagSet, raw bool) {
	formats := "text or json"
	if raw {
		formats = "text, json or raw (the value's exact bytes, no newline)"
		fs.BoolVarP(&o.verbose, "verbose", "v", false, "also print the version, on stderr (text output)")
	}
	fs.StringVarP(&o.format, "output", "o", outText, "output format: "+formats)
}

func (o *outputFlag) check(raw bool) error {
	switch o.format {
	case outText, outJSON:
		return nil
	case outRaw:
		if raw {
			return nil
		}
	}
	return usageErrorf("unknown output format %q", o.format)
}

// jsonValue is the -o json form of a key.
type jsonValue struct {
	Key     string `json:"key"`
	Version uint64 `json:"version,omitempty"`
	// Value is set when the data is valid UTF-8, ValueBase64 otherwise.
	Value       *string `json:"value,omitempty"`
	ValueBase64 []byte  `json:"value_base64,omitempty"`
	Deleted     bool    `json:"deleted,omitempty"`
}

func newJSONValue(key string, v proposer.Value, withData bool) jsonValue {
	j := jsonValue{Key: key, Version: v.Version}
	if withData {
		if utf8.Valid(v.Data) {
			s := string(v.Data)
			j.Value = &s
		} else {
			j.ValueBase64 = v.Data
		}
	}
	return j
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withProposer runs fn with a proposer connected to the cluster; the whole
// command, connection included, has --timeout.
// checkKeyArgs checks what every key command takes before it dials: the key
// and the output flags (raw: whether -o raw is allowed).
func checkKeyArgs(key string, o *outputFlag, raw bool) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return o.check(raw)
}

func (g *globals) withProposer(ctx context.Context, fn func(ctx context.Context, p *proposer.Client) error) error {
	tlsCfg, err := g.client.tlsConfig()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, g.client.timeout)
	defer cancel()
	// RequestTimeout bounds each round trip; the command's deadline bounds
	// the retries.
	p, err := proposer.New(ctx, proposer.Config{
		Endpoints:      g.client.endpoints,
		TLS:            tlsCfg,
		DialTimeout:    g.client.timeout,
		RequestTimeout: min(g.client.timeout, proposer.DefaultRequestTimeout),
	})
	if err != nil {
		return fmt.Errorf("while connecting to %v: %w", g.client.endpoints, err)
	}
	defer p.Close()
	return fn(ctx, p)
}

// readValue returns the VALUE argument, or stdin for "-".
func (g *globals) readValue(arg string) ([]byte, error) {
	if arg != "-" {
		return []byte(arg), nil
	}
	b, err := io.ReadAll(g.in)
	if err != nil {
		return nil, fmt.Errorf("while reading the value from stdin: %w", err)
	}
	return b, nil
}

func checkKey(key string) error {
	if key == "" {
		return usageErrorf("KEY must not be empty")
	}
	return nil
}

func newGetCmd(g *globals) *cobra.Command {
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of a key",
		Long: `Print the value of a key, with a newline added if it does not end with one
(-o raw: the exact bytes).

The read is linearizable: it returns the latest value chosen by the cluster.
A key that was never written, or was deleted, is not found (exit code 3).`,
		Example: `  kshaka get greeting
  kshaka get greeting -o json     # {"key": ..., "version": ..., "value": ...}
  kshaka get blob -o raw > blob.bin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if err := checkKeyArgs(key, &o, true); err != nil {
				return err
			}
			return g.withProposer(cmd.Context(), func(ctx context.Context, p *proposer.Client) error {
				v, err := p.Get(ctx, []byte(key))
				if err != nil {
					return fmt.Errorf("get %q: %w", key, err)
				}
				switch o.format {
				case outJSON:
					return writeJSON(g.out, newJSONValue(key, v, true))
				case outRaw:
					_, err = g.out.Write(v.Data)
				default:
					if o.verbose {
						fmt.Fprintf(g.errw, "version %d\n", v.Version)
					}
					data := v.Data
					if !bytes.HasSuffix(data, []byte("\n")) {
						data = append(data[:len(data):len(data)], '\n')
					}
					_, err = g.out.Write(data)
				}
				return err
			})
		},
	}
	o.add(cmd.Flags(), true)
	return cmd
}

// printWritten reports the outcome of a write.
func (g *globals) printWritten(o outputFlag, key string, v proposer.Value) error {
	if o.format == outJSON {
		return writeJSON(g.out, newJSONValue(key, v, false))
	}
	_, err := fmt.Fprintf(g.out, "version %d\n", v.Version)
	return err
}

func newPutCmd(g *globals) *cobra.Command {
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set the value of a key, whatever it was",
		Long: `Set the value of a key, whatever it was, and print its new version.

VALUE "-" reads the value from stdin. To write only if nobody changed the key
since you read it, use 'kshaka cas'.

If the command fails with exit code 5 (unknown outcome), the write may or may
not have happened: read the key before trying again.`,
		Example: `  kshaka put greeting hello          # prints: version 1
  kshaka put config - < config.yaml`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if err := checkKeyArgs(key, &o, false); err != nil {
				return err
			}
			data, err := g.readValue(args[1])
			if err != nil {
				return err
			}
			return g.withProposer(cmd.Context(), func(ctx context.Context, p *proposer.Client) error {
				v, err := p.Put(ctx, []byte(key), data)
				if err != nil {
					return fmt.Errorf("put %q: %w", key, err)
				}
				return g.printWritten(o, key, v)
			})
		},
	}
	o.add(cmd.Flags(), false)
	return cmd
}

func newCasCmd(g *globals) *cobra.Command {
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "cas KEY VERSION VALUE",
		Short: "Set the value of a key only if it is still at VERSION",
		Long: `Compare-and-swap: set the value of a key only if its current version is
VERSION, and print the new version.

VERSION 0 means "the key does not exist" (never written, or deleted), so
'kshaka cas KEY 0 VALUE' creates a key only if it is absent. VALUE "-" reads
the value from stdin.

If the key is at another version, nothing is written, the current version is
printed and the exit code is 4. With exit code 5 (unknown outcome) the write
may or may not have happened: read the key again; retrying the same cas is
safe, since it cannot apply twice.`,
		Example: `  v=$(kshaka get counter -o json | jq .version)
  kshaka cas counter "$v" 42`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if err := checkKeyArgs(key, &o, false); err != nil {
				return err
			}
			version, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return usageErrorf("VERSION must be a non-negative integer, not %q", args[1])
			}
			data, err := g.readValue(args[2])
			if err != nil {
				return err
			}
			return g.withProposer(cmd.Context(), func(ctx context.Context, p *proposer.Client) error {
				v, err := p.CompareAndSwap(ctx, []byte(key), version, data)
				if err != nil {
					return fmt.Errorf("cas %q at version %d: %w", key, version, err)
				}
				return g.printWritten(o, key, v)
			})
		},
	}
	o.add(cmd.Flags(), false)
	return cmd
}

func newDeleteCmd(g *globals) *cobra.Command {
	var o outputFlag
	cmd := &cobra.Command{
		Use:     "delete KEY",
		Aliases: []string{"del", "rm"},
		Short:   "Delete a key",
		Long: `Delete a key. Deleting a key that does not exist changes nothing and
succeeds. A deleted key keeps counting versions: 'kshaka cas KEY 0 VALUE'
recreates it, and its version continues from where it was.`,
		Example: `  kshaka delete greeting`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if err := checkKeyArgs(key, &o, false); err != nil {
				return err
			}
			return g.withProposer(cmd.Context(), func(ctx context.Context, p *proposer.Client) error {
				if err := p.Delete(ctx, []byte(key)); err != nil {
					return fmt.Errorf("delete %q: %w", key, err)
				}
				if o.format == outJSON {
					return writeJSON(g.out, jsonValue{Key: key, Deleted: true})
				}
				_, err := fmt.Fprintln(g.out, "deleted")
				return err
			})
		},
	}
	o.add(cmd.Flags(), false)
	return cmd
}
