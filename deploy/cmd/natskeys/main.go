// Command natskeys prints the NATS Secrets of a deployment with fresh credentials: an nkey user per
// function and for the operator's tools, and the JetStream encryption key. Write the output
// outside the repository and apply it once (`make nats-secrets > …`; deploy/README.md).
package main

import (
	"flag"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/omnimember/omnimember/deploy/natsauth"
)

func main() {
	namespace := flag.String("namespace", "omnimember", "namespace of the Secrets")
	flag.Parse()
	if err := run(*namespace); err != nil {
		fmt.Fprintf(os.Stderr, "natskeys: %v\n", err)
		os.Exit(1)
	}
}

func run(namespace string) error {
	server, clients, err := natsauth.Generate(namespace)
	if err != nil {
		return err
	}
	for i, s := range []any{server, clients} {
		out, err := yaml.Marshal(s)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Println("---")
		}
		fmt.Print(string(out))
	}
	return nil
}
