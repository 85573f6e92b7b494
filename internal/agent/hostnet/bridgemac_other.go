//go:build !linux

package hostnet

// PinBridgeMAC does nothing: only Linux bridges take their ports'
// addresses.
func PinBridgeMAC(string) (string, error) { return "", nil }
