/* jsonbyte.h: the bytes a JSON string carries as they are, shared by the
 * writers and quick readers that run once a request or a record
 * (p2p-tlsterm's jw_*, p2p-audit's quick reader). */
#ifndef P2P_JSONBYTE_H
#define P2P_JSONBYTE_H

/* 1 for printable ASCII and DEL but '"' and '\' (RFC 8259 section 7);
 * 0 for control bytes, '"', '\' and every byte past 0x7f. */
extern const unsigned char json_plain_byte[256];

#endif
