// Package natssetup makes omnimember's JetStream topology before any function runs: the streams and
// every function's durable consumer, defined by the functions' own packages and the runtime.
package natssetup

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnimember/omnimember/functions/campaign"
	"github.com/omnimember/omnimember/functions/match"
	"github.com/omnimember/omnimember/functions/notify"
	pointsaward "github.com/omnimember/omnimember/functions/points-award"
	"github.com/omnimember/omnimember/functions/profile"
	tierevaluate "github.com/omnimember/omnimember/functions/tier-evaluate"
	"github.com/omnimember/omnimember/shared/runtime"
	"github.com/omnimember/omnimember/shared/stream"
)

// Consumer is a function's durable consumer: the function and the event types it pulls.
type Consumer struct {
	Function string
	Consumes []string
}

// Consumers are the durable consumers of every function that pulls from JetStream, read from the
// functions' packages (ingest publishes only). KEDA's nats-jetstream scaler reads the lag of these
// by name, and finds none until one exists: a chained function that never ran would never wake.
func Consumers() []Consumer {
	return []Consumer{
		{match.Name, match.Consumes},
		{pointsaward.Name, pointsaward.Consumes},
		{tierevaluate.Name, tierevaluate.Consumes},
		{notify.Name, notify.Consumes},
		{profile.Name, profile.Consumes},
		{campaign.Name, campaign.Consumes},
	}
}

// Others are the durable consumers a function makes beside its own (campaign's worker holds the
// campaigns still sending on one; its ScaledObject watches it), by function.
func Others() map[string][]jetstream.ConsumerConfig {
	return map[string][]jetstream.ConsumerConfig{campaign.Name: {campaign.SendingConsumerConfig()}}
}

// Durables are the names of every consumer made here, by function: what a ScaledObject may watch.
func Durables() map[string][]string {
	out := map[string][]string{}
	for _, c := range Consumers() {
		out[c.Function] = append(out[c.Function], c.Function)
	}
	for f, cfgs := range Others() {
		for _, cfg := range cfgs {
			out[f] = append(out[f], cfg.Durable)
		}
	}
	return out
}

// Run creates or updates the streams (cfg.Topology) and every consumer as its function does at
// start (cfg.ConsumerConfig), so running it again, or a function starting later, changes nothing.
// It returns the consumers it made, by name.
func Run(ctx context.Context, js jetstream.JetStream, cfg runtime.Config) ([]string, error) {
	if err := stream.Ensure(ctx, js, cfg.Topology); err != nil {
		return nil, err
	}
	var made []string
	for _, c := range Consumers() {
		if _, err := js.CreateOrUpdateConsumer(ctx, stream.Events, cfg.ConsumerConfig(c.Function, c.Consumes)); err != nil {
			return made, fmt.Errorf("consumer %s: %w", c.Function, err)
		}
		made = append(made, c.Function)
		for _, other := range Others()[c.Function] {
			if _, err := js.CreateOrUpdateConsumer(ctx, stream.Events, other); err != nil {
				return made, fmt.Errorf("consumer %s: %w", other.Durable, err)
			}
			made = append(made, other.Durable)
		}
	}
	return made, nil
}
