/* jsonbyte.h: the bytes a JSON string carries as they are, shared by the
 * writers and quick readers that run once a request or a record
 * (p2p-tlsterm's jw_*, p2p-audit's quick reader). */
#ifndef P2P_JSONBYTE_H
#define P2P_JSONBYTE_H

#define JSON_PLAIN 1      /* carried as it is (RFC 8259 section 7) */
#define JSON_PRINTABLE 2  /* and printable ASCII: not DEL */

/* JSON_PLAIN | JSON_PRINTABLE for printable ASCII but '"' and '\';
 * JSON_PLAIN alone for DEL; 0 for control bytes, '"', '\' and every byte
 * past 0x7f. */
extern const unsigned char json_plain_byte[256];

#endif
