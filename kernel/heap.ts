/**
 * The node flags the service runs with: `npm start`, `npm run demo`, `npm run start:gateway` and
 * `start:dispatcher` (the roles on PostgreSQL) and the Docker image's CMD carry
 * them (V8 sizes its heap when the process starts, so they cannot be set from inside it), the gateway
 * benchmark's broker too, so that it measures the service as it runs; test/heap-flags.test.ts checks
 * that these places agree with this list.
 *
 * - `--no-allocation-site-pretenuring`: V8 allocates straight into the old generation from an allocation
 *   site whose objects used to survive. Here the same sites make the long-lived objects of 10,000
 *   connections and the per-message objects that die within milliseconds, so after a reconnect storm
 *   every message became old-generation garbage: 10,000 homes sending 5,000 events/s peaked at
 *   426–548 MB RSS with it, 303–306 MB without.
 * - `--max-semi-space-size=32` (MB; V8's default is 16): every message lives through its durable write,
 *   and with up to thousands in flight a small young generation copies and promotes many of them. With
 *   32, sustained ingest went from ~74,000 to ~87,000 events/s for ~20 MB more at peak; 64 gave no more
 *   throughput and 65 MB more memory. (Measured with `npm run bench:gateway`.)
 */
export const HEAP_FLAGS = ['--max-semi-space-size=32', '--no-allocation-site-pretenuring'] as const;

/**
 * A gateway process (ROLE=gateway: `npm run start:gateway`, the gateways of `docker-compose.yml` and of the
 * scale benchmark) adds `--no-memory-reducer` (CLU-14). V8's memory reducer runs a full collection whenever
 * it judges a process's allocation low enough to give memory back; a gateway holding ~17,000 devices is
 * judged so under steady traffic, and each collection of its ~200 MB of live heap stopped it for 100–800 ms
 * on a busy machine, every 25–50 s, in step with the other gateways (they start together and see the
 * same traffic: 13 full collections in 100 s over six gateways). Without it a gateway collects its old
 * generation only when V8's ordinary limit is reached (set from the live heap after each collection: 1.2
 * to 2 times it in these runs): 0–3 in 100 s over the six. Measured with `npm run bench -- scale`, 100 s
 * windows: see the README, "7 December, noon".
 */
export const GATEWAY_HEAP_FLAGS = [...HEAP_FLAGS, '--no-memory-reducer'] as const;
