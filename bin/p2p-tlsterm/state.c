/* state.c: the daemon's state, shared by its parts (outside main.c so that
 * the unit tests and fuzz targets, which link every part but main.c, have
 * it too). */
#include "tlsterm.h"

struct tlsterm tt;
