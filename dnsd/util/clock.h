/* clock.h -- the monotonic clock in the units the modules count in (and
 * the wall clock in ms, for what is shown to people). One clock_gettime
 * each; never fails on Linux for these clocks. */
#ifndef MESHDNS_CLOCK_H
#define MESHDNS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns_of(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_ns(void)
{
	return clock_ns_of(CLOCK_MONOTONIC);
}

static inline uint64_t clock_mono_us(void)
{
	return clock_ns_of(CLOCK_MONOTONIC) / 1000u;
}

static inline uint64_t clock_mono_ms(void)
{
	return clock_ns_of(CLOCK_MONOTONIC) / 1000000u;
}

static inline uint64_t clock_wall_ms(void)
{
	return clock_ns_of(CLOCK_REALTIME) / 1000000u;
}

#endif
