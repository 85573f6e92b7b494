package hostnet

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PinBridgeMAC fixes the hardware address of the bridge named iface when
// the kernel chose it. A Linux bridge whose address was never set takes
// the lowest address among its ports, so a container joining it can
// change the gateway's address under the containers already there: their
// ARP entries then point at an address the bridge no longer answers to,
// and their connections to the gateway (the metadata endpoint, the DNS
// relay) go unanswered until the entries expire. Setting the address
// explicitly, to the one it has (or a fresh one when it has none yet),
// keeps it. It reports what it did, "" when nothing was needed.
func PinBridgeMAC(iface string) (string, error) {
	b, err := os.ReadFile("/sys/class/net/" + iface + "/addr_assign_type")
	if err != nil {
		return "", nil // not a Linux interface we can see
	}
	const netAddrSet = "3"
	if strings.TrimSpace(string(b)) == netAddrSet {
		return "", nil
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return "", err
	}
	mac := ifi.HardwareAddr
	if len(mac) != 6 || isZero(mac) {
		mac = make(net.HardwareAddr, 6)
		rand.Read(mac[2:])
		mac[0], mac[1] = 0x02, 0x42 // locally administered, as the engine's
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var req struct {
		name   [unix.IFNAMSIZ]byte
		family uint16
		data   [14]byte
		_      [8]byte // the rest of struct ifreq's union
	}
	copy(req.name[:], iface)
	req.family = unix.ARPHRD_ETHER
	copy(req.data[:], mac)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFHWADDR, uintptr(unsafe.Pointer(&req))); errno != 0 {
		return "", fmt.Errorf("set the hardware address of %s: %w", iface, errno)
	}
	return mac.String(), nil
}

func isZero(mac net.HardwareAddr) bool {
	for _, b := range mac {
		if b != 0 {
			return false
		}
	}
	return true
}
