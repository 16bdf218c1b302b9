/* kith: the rules of a link's paths (path.h). */
#include "path.h"

#include <string.h>

kith_path_rank kith_path_rank_of(const char *path) {
  if (path == NULL)
    return KITH_PATH_NONE;
  if (strcmp(path, "friend-relay") == 0)
    return KITH_PATH_FRIEND_RELAY;
  if (strcmp(path, "relay") == 0)
    return KITH_PATH_TURN;
  if (strcmp(path, "host") == 0 || strcmp(path, "srflx") == 0 ||
      strcmp(path, "prflx") == 0)
    return KITH_PATH_DIRECT;
  return KITH_PATH_NONE;
}

uint64_t kith_backoff_ms(unsigned failures, uint32_t rnd) {
  uint64_t d = KITH_BACKOFF_FIRST_MS;

  if (failures == 0)
    return 0;
  for (unsigned i = 1; i < failures && d < KITH_BACKOFF_MAX_MS; i++)
    d *= 2;
  if (d > KITH_BACKOFF_MAX_MS)
    d = KITH_BACKOFF_MAX_MS;
  /* d * (3/4 + rnd/2^33), in integers: no float rounding across CPUs */
  return d - d / 4 + ((d * (uint64_t)rnd) >> 33);
}
