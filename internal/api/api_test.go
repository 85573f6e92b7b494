package api

import "testing"

func TestValidatorOneOf(t *testing.T) {
	labels := map[string]string{"launchType": "launch type"}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"member", "networkMode", "networkMode should be one of [A,B]"},
		{"nested", "networkConfiguration.awsvpcConfiguration.assignPublicIp", "assignPublicIp should be one of [A,B]"},
		{"list element", "requiresCompatibilities.2.member", "requiresCompatibilities should be one of [A,B]"},
		{"labelled", "launchType", "launch type should be one of [A,B]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v Validator
			v.Required("family")
			v.OneOf(tc.path, []string{"A", "B"}, labels)
			v.OneOf("other", []string{"C"}, labels)
			err := v.Err("InvalidParameterException")
			ve, ok := err.(*ValidationError)
			if !ok || ve.Error() != tc.want || ve.ErrorCode() != "InvalidParameterException" || len(ve.Problems) != 3 {
				t.Fatalf("got %#v, want message %q", err, tc.want)
			}
		})
	}
	var v Validator
	v.Required("family")
	if got, want := v.Err("X").Error(), "1 validation error detected: Value null at 'family' failed to satisfy constraint: Member must not be null"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
