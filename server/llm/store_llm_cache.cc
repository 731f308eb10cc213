// StoreLlmCache is header-only; this unit anchors the library.
#include "server/llm/store_llm_cache.h"
