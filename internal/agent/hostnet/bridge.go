package hostnet

import "net"

// BridgeInterface is the engine's default bridge.
const BridgeInterface = "docker0"

// BridgeGateway is the host's address on the engine's default bridge, where
// bridge-mode containers reach the host; 172.17.0.1, the engine's default,
// when the bridge has none.
func BridgeGateway() string {
	if iface, err := net.InterfaceByName(BridgeInterface); err == nil {
		if addrs, err := iface.Addrs(); err == nil {
			for _, addr := range addrs {
				if ipn, ok := addr.(*net.IPNet); ok && ipn.IP.To4() != nil {
					return ipn.IP.String()
				}
			}
		}
	}
	return "172.17.0.1"
}

// interfaceWithAddr is the name of the host interface holding ip, or "".
func interfaceWithAddr(ip string) string {
	want := net.ParseIP(ip)
	ifaces, err := net.Interfaces()
	if err != nil || want == nil {
		return ""
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, addr := range addrs {
			if ipn, ok := addr.(*net.IPNet); ok && ipn.IP.Equal(want) {
				return iface.Name
			}
		}
	}
	return ""
}
