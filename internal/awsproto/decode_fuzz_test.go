package awsproto

import (
	"context"
	"sort"
	"testing"

	ecsapi "github.com/wharfhq/wharf/internal/api/ecs"
	sdapi "github.com/wharfhq/wharf/internal/api/servicediscovery"
)

// FuzzDecode feeds arbitrary bodies to every operation's decoding and model
// validation. Each must answer with a coded 4xx error (the implementations
// behind are Unimplemented) and never panic.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{}`, ``, `null`, `[]`, `{"cluster":"a","count":11}`,
		`{"family":"f","containerDefinitions":[{"name":"a","image":"b","memory":6,"portMappings":[{"containerPort":70000}],"healthCheck":{"command":["CMD"]}}]}`,
		`{"tags":[{"key":"","value":"x"}],"resourceArn":"arn"}`,
		`{"createdAt":1e400}`, `{"maxResults":"x"}`, `{"desiredStatus":"RUNNING","maxResults":-1}`,
		`{"Name":"ns","CreatorRequestId":"x","Properties":{"DnsProperties":{"SOA":{"TTL":-1}}}}`,
		`{"ServiceId":"srv-1","InstanceId":"i","Attributes":{"AWS_INSTANCE_IPV4":"1.2.3.4"}}`,
	} {
		for i := range 4 {
			f.Add(seed, uint8(i*37))
		}
	}
	var names []string
	ecsOps := ecsapi.Operations(ecsapi.Unimplemented{})
	sdOps := sdapi.Operations(sdapi.Unimplemented{})
	for n := range ecsOps {
		names = append(names, "ecs/"+n)
	}
	for n := range sdOps {
		names = append(names, "sd/"+n)
	}
	sort.Strings(names)
	f.Fuzz(func(t *testing.T, body string, pick uint8) {
		name := names[int(pick)%len(names)]
		op, ok := ecsOps[name[len("ecs/"):]]
		if name[:3] == "sd/" {
			op, ok = sdOps[name[len("sd/"):]]
		}
		if !ok {
			t.Fatalf("no operation %s", name)
		}
		out, err := op.Invoke(context.Background(), func(v any) error { return decode([]byte(body), v) })
		if err == nil {
			t.Fatalf("%s answered %v for an unimplemented service", name, out)
		}
		c, ok := AsCoded(err)
		if !ok || c.ErrorCode() == "" || c.HTTPStatus() < 400 || c.HTTPStatus() >= 500 {
			t.Fatalf("%s: error %v is not a coded client error", name, err)
		}
	})
}
