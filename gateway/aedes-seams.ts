/**
 * The places the gateway reaches past aedes' public API (aedes 1.x), kept in this one file and pinned
 * by test/gateway/aedes-seams.test.ts (and test/cluster/gateways.test.ts for the takeover), which fail on an
 * aedes upgrade that changes one. Everything else
 * goes through aedes' options (preConnect, authenticate, authorize*), its events and `Client`'s typed members.
 */
import { Aedes, type AedesOptions } from 'aedes';

/** Marks a PUBLISH packet the gateway has fully handled: logged (or rejected) and acknowledged. */
const HANDLED = Symbol('g365.handled');

export function markHandled(packet: object): void {
  (packet as { [HANDLED]?: true })[HANDLED] = true;
}

/**
 * Stops aedes routing the packets marked handled. A device's events reach the rules from the durable log,
 * and the ACL lets no client subscribe to them (acl.ts maySubscribe): aedes' routing of each one after its
 * PUBACK (offline queues, the subscription match, the `publish` event) would find nobody, at a tenth of the
 * event loop at saturation. Everything else (status, wills, notifications) is routed as before. Allowing a
 * subscription to device events means removing this.
 *
 * Relies on: aedes' inbound PUBLISH handler (lib/handlers/publish.js) routing through the instance's
 * `publish(packet, client, done)` after `authorizePublish`, with the same packet object. `publish` is
 * public; that the handler calls it, and with three arguments, is not.
 */
export function routeOnlyUnhandled(broker: Aedes): void {
  const route = broker.publish.bind(broker) as (p: unknown, c: unknown, done?: unknown) => void;
  (broker as { publish: unknown }).publish = (packet: object, client: unknown, done?: unknown) => {
    if ((packet as { [HANDLED]?: true })[HANDLED] && typeof done === 'function') return done(null);
    route(packet, client, done);
  };
}

/**
 * The client ids whose sessions hold a subscription to `topic`, connected or not (a persistent session,
 * clean session off, keeps QoS 1 messages for its app). Relies on: `broker.persistence`, the persistence
 * aedes was given or made (an option, not in aedes' types), and its `subscriptionsByTopic` (the
 * aedes-persistence contract).
 */
export async function sessionsSubscribedTo(broker: Aedes, topic: string): Promise<string[]> {
  const persistence = (
    broker as unknown as {
      persistence: { subscriptionsByTopic(topic: string): Promise<{ clientId: string }[]> };
    }
  ).persistence;
  return (await persistence.subscriptionsByTopic(topic)).map((s) => s.clientId);
}

/**
 * Creates and starts the broker, telling `onTakenOver` of each client id whose session another broker of
 * the mesh has just taken (CLU-05), before aedes closes the local connection of that client id: the gateway
 * then ends that session without an `offline` record (the new gateway has recorded it online).
 *
 * Relies on: aedes publishing `$SYS/<broker id>/new/clients` (payload: the client id) on its `mq` for each
 * registered client and closing its own client of that id when another broker's id published it
 * (`closeSameClients`, subscribed in `listen()`); and mqemitter calling the listeners of one topic in the
 * order they subscribed, so this one, subscribed before `listen()`, runs before that close.
 */
export async function createBroker(
  opts: AedesOptions,
  onTakenOver: (clientId: string) => void,
): Promise<Aedes> {
  const broker = new Aedes(opts);
  const mq = (
    broker as unknown as { mq: { on(t: string, f: (p: NewClient, done: () => void) => void): void } }
  ).mq;
  mq.on('$SYS/+/new/clients', (packet, done) => {
    const brokerId = packet.topic.split('/')[1];
    if (brokerId !== broker.id) onTakenOver(packet.payload.toString());
    done();
  });
  await (broker as unknown as { listen(): Promise<void> }).listen();
  return broker;
}

type NewClient = { topic: string; payload: Buffer };

/**
 * True for a stored will that aedes' periodic will sweep (`_clearWills`) hands to `authorizePublish` for a
 * session that is still connected here: the sweep takes a broker whose `$SYS/<id>/heartbeat` it has not
 * heard for 3 heartbeat periods for dead, its own included when the bus (Redis, CLU-06) was down that long.
 * Such a will says nothing about the device and must not be taken for its `offline` status.
 *
 * Relies on: aedes-persistence's `putWill` stamping the stored will with `brokerId` (a PUBLISH read from a
 * socket never has one), and the sweep passing the live client, if any, to `authorizePublish`.
 */
export function isSweptWillOfLiveSession(client: { closed: boolean }, packet: object): boolean {
  return !client.closed && typeof (packet as { brokerId?: unknown }).brokerId === 'string';
}
