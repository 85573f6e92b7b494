package sidecar

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The nftables table and chain the proxy owns in its task's network
// namespace.
const (
	nftTable = "wharf_service_connect"
	nftChain = "egress"
)

// nftCapture sends the task's connections to alias addresses to the
// proxy's listeners with one nat rule per alias in the OUTPUT hook:
//
//	ip daddr VIP tcp dport PORT dnat to VIP:LISTENER_PORT
//
// as ECS's Service Connect does with iptables. It talks nftables' netlink
// protocol directly (no nft binary in the image), and replaces the whole
// table in one batch, so an update is atomic. It needs CAP_NET_ADMIN in
// the namespace.
type nftCapture struct{}

func newCapture() capturer { return nftCapture{} }

func (nftCapture) set(rules []redirect) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("nftables: open netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("nftables: bind netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	batch, seqs := nftBatch(rules, uint32(os.Getpid())<<8)
	if err := unix.Sendto(fd, batch, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("nftables: send: %w", err)
	}
	return nftAcks(fd, seqs)
}

// nftBatch encodes the transaction replacing the table with one holding
// rules, and returns it with the sequence numbers of the messages the
// kernel acknowledges.
func nftBatch(rules []redirect, seq uint32) ([]byte, []uint32) {
	var b []byte
	var seqs []uint32
	msg := func(typ uint16, flags uint16, family uint8, attrs []byte) {
		seq++
		b = appendNlmsg(b, typ, flags, seq, family, attrs)
		if typ != unix.NFNL_MSG_BATCH_BEGIN && typ != unix.NFNL_MSG_BATCH_END {
			seqs = append(seqs, seq)
		}
	}
	nft := func(m int) uint16 { return uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | m) }
	const (
		req    = unix.NLM_F_REQUEST | unix.NLM_F_ACK
		create = req | unix.NLM_F_CREATE
	)
	table := nlaString(unix.NFTA_TABLE_NAME, nftTable)

	msg(unix.NFNL_MSG_BATCH_BEGIN, unix.NLM_F_REQUEST, unix.AF_UNSPEC, nil)
	// Create the table if missing, delete it with whatever it holds, and
	// create it afresh: nft's idiom for an idempotent replacement.
	msg(nft(unix.NFT_MSG_NEWTABLE), create, unix.NFPROTO_IPV4, table)
	msg(nft(unix.NFT_MSG_DELTABLE), req, unix.NFPROTO_IPV4, table)
	msg(nft(unix.NFT_MSG_NEWTABLE), create, unix.NFPROTO_IPV4, table)
	var chain []byte
	chain = append(chain, nlaString(unix.NFTA_CHAIN_TABLE, nftTable)...)
	chain = append(chain, nlaString(unix.NFTA_CHAIN_NAME, nftChain)...)
	priority := int32(-100) // NF_IP_PRI_NAT_DST
	hook := append(nlaBE32(unix.NFTA_HOOK_HOOKNUM, unix.NF_INET_LOCAL_OUT), nlaBE32(unix.NFTA_HOOK_PRIORITY, uint32(priority))...)
	chain = append(chain, nlaNested(unix.NFTA_CHAIN_HOOK, hook)...)
	chain = append(chain, nlaString(unix.NFTA_CHAIN_TYPE, "nat")...)
	msg(nft(unix.NFT_MSG_NEWCHAIN), create, unix.NFPROTO_IPV4, chain)
	for _, r := range rules {
		var exprs []byte
		for _, e := range redirectExprs(r) {
			exprs = append(exprs, nlaNested(unix.NFTA_LIST_ELEM, e)...)
		}
		var rule []byte
		rule = append(rule, nlaString(unix.NFTA_RULE_TABLE, nftTable)...)
		rule = append(rule, nlaString(unix.NFTA_RULE_CHAIN, nftChain)...)
		rule = append(rule, nlaNested(unix.NFTA_RULE_EXPRESSIONS, exprs)...)
		msg(nft(unix.NFT_MSG_NEWRULE), create|unix.NLM_F_APPEND, unix.NFPROTO_IPV4, rule)
	}
	msg(unix.NFNL_MSG_BATCH_END, unix.NLM_F_REQUEST, unix.AF_UNSPEC, nil)
	return b, seqs
}

// redirectExprs are the expressions of one rule:
// ip daddr == VIP, l4proto == tcp, tcp dport == PORT, dnat to target.
func redirectExprs(r redirect) [][]byte {
	vip := r.Alias.Addr().As4()
	target := r.Target.Addr().As4()
	port := binary.BigEndian.AppendUint16(nil, r.Alias.Port())
	tport := binary.BigEndian.AppendUint16(nil, r.Target.Port())
	expr := func(name string, data ...[]byte) []byte {
		return append(nlaString(unix.NFTA_EXPR_NAME, name), nlaNested(unix.NFTA_EXPR_DATA, slices.Concat(data...))...)
	}
	payload := func(base, offset, length uint32) []byte {
		return expr("payload", nlaBE32(unix.NFTA_PAYLOAD_DREG, unix.NFT_REG_1), nlaBE32(unix.NFTA_PAYLOAD_BASE, base),
			nlaBE32(unix.NFTA_PAYLOAD_OFFSET, offset), nlaBE32(unix.NFTA_PAYLOAD_LEN, length))
	}
	cmp := func(value []byte) []byte {
		return expr("cmp", nlaBE32(unix.NFTA_CMP_SREG, unix.NFT_REG_1), nlaBE32(unix.NFTA_CMP_OP, unix.NFT_CMP_EQ),
			nlaNested(unix.NFTA_CMP_DATA, nla(unix.NFTA_DATA_VALUE, value)))
	}
	immediate := func(reg uint32, value []byte) []byte {
		return expr("immediate", nlaBE32(unix.NFTA_IMMEDIATE_DREG, reg), nlaNested(unix.NFTA_IMMEDIATE_DATA, nla(unix.NFTA_DATA_VALUE, value)))
	}
	return [][]byte{
		payload(unix.NFT_PAYLOAD_NETWORK_HEADER, 16, 4), // IPv4 destination address
		cmp(vip[:]),
		expr("meta", nlaBE32(unix.NFTA_META_KEY, unix.NFT_META_L4PROTO), nlaBE32(unix.NFTA_META_DREG, unix.NFT_REG_1)),
		cmp([]byte{unix.IPPROTO_TCP}),
		payload(unix.NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2), // TCP destination port
		cmp(port),
		immediate(unix.NFT_REG_1, target[:]),
		immediate(unix.NFT_REG_2, tport),
		expr("nat", nlaBE32(unix.NFTA_NAT_TYPE, unix.NFT_NAT_DNAT), nlaBE32(unix.NFTA_NAT_FAMILY, unix.NFPROTO_IPV4),
			nlaBE32(unix.NFTA_NAT_REG_ADDR_MIN, unix.NFT_REG_1), nlaBE32(unix.NFTA_NAT_REG_PROTO_MIN, unix.NFT_REG_2)),
	}
}

// nftAcks reads the kernel's answers until every message in seqs is
// acknowledged; the first error fails the (already aborted) batch.
func nftAcks(fd int, seqs []uint32) error {
	want := make(map[uint32]bool, len(seqs))
	for _, s := range seqs {
		want[s] = true
	}
	buf := make([]byte, 1<<16)
	for len(want) > 0 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("nftables: read the kernel's answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				return fmt.Errorf("nftables: the kernel refused the rules: %w", unix.Errno(-code))
			}
			delete(want, m.Header.Seq)
		}
	}
	return nil
}

func appendNlmsg(b []byte, typ, flags uint16, seq uint32, family uint8, attrs []byte) []byte {
	const hdr = unix.SizeofNlMsghdr + 4 // + nfgenmsg
	b = binary.NativeEndian.AppendUint32(b, uint32(hdr+len(attrs)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel
	resID := uint16(0)
	if typ == unix.NFNL_MSG_BATCH_BEGIN || typ == unix.NFNL_MSG_BATCH_END {
		resID = unix.NFNL_SUBSYS_NFTABLES
	}
	b = append(b, family, unix.NFNETLINK_V0)
	b = binary.BigEndian.AppendUint16(b, resID)
	return append(b, attrs...)
}

func nla(typ uint16, value []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofNlAttr+len(value)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, value...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func nlaString(typ uint16, s string) []byte { return nla(typ, append([]byte(s), 0)) }

func nlaBE32(typ uint16, v uint32) []byte { return nla(typ, binary.BigEndian.AppendUint32(nil, v)) }

func nlaNested(typ uint16, attrs []byte) []byte { return nla(typ|unix.NLA_F_NESTED, attrs) }
