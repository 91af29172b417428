package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Send posts the events to ingest in batches from several clients as the sender of token, spread
// over spread as platforms' webhooks arrive, retrying each batch until it is answered 202 (ingest
// may be dead, restarting or paused).
func Send(ctx context.Context, ingestAddr func() string, token string, evs []cloudevents.Event, clients, batch int, spread time.Duration) (retries int, err error) {
	pace := time.NewTicker(max(time.Millisecond, spread/time.Duration(len(evs)/batch+1)))
	defer pace.Stop()
	batches := make(chan []cloudevents.Event)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	client := &http.Client{Timeout: 10 * time.Second}
	for range clients {
		wg.Go(func() {
			for b := range batches {
				n, err := postUntilAccepted(ctx, client, ingestAddr, token, b)
				mu.Lock()
				retries += n
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := 0; i < len(evs); i += batch {
		<-pace.C
		select {
		case batches <- evs[i:min(i+batch, len(evs))]:
		case err := <-errs:
			close(batches)
			wg.Wait()
			return retries, err
		}
	}
	close(batches)
	wg.Wait()
	select {
	case err = <-errs:
	default:
	}
	return retries, err
}

func postUntilAccepted(ctx context.Context, client *http.Client, ingestAddr func() string, token string, b []cloudevents.Event) (int, error) {
	body, err := json.Marshal(b)
	if err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ingestAddr()+"/v1/events", bytes.NewReader(body))
		if err != nil {
			return attempt, err
		}
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				return attempt, nil
			}
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return attempt, fmt.Errorf("ingest refused a generated batch: %s", resp.Status)
			}
		}
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(backoff(attempt)):
		}
	}
}

func backoff(attempt int) time.Duration {
	return min(2*time.Second, time.Duration(50<<min(attempt, 6))*time.Millisecond)
}
