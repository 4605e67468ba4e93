/**
 * Live updates over socket.io (SPEC §7, §8): every alert change goes to the dispatch screens of its
 * community and to the responders of its grid; notifications go to one staff member's room (all their
 * devices). After a reconnect a client asks for the changes it missed (`catchup`), filtered by the same
 * scope as the rooms.
 *
 * Rooms: a dispatch-role member joins `community:{c}` for each community of the grids they cover, or
 * `alerts:all` when they cover no grid (a central dispatch room sees every community, including ones added
 * later); every dispatch-role member also joins `dispatch` (channel health, duty gaps, failed deliveries).
 * Responders join `grid:{g}` for their grids; everyone joins `staff:{id}` (their assigned alerts, wherever
 * the alert is, and their notifications).
 *
 * Rights end at once (SPEC §8 Access, SEC-03): each connection keeps the token it logged in with; when its session
 * expires (a timer on the injected clock at the session's end) or anyone's rights change (`recheck`), the
 * session is read again: ended means disconnected, otherwise the rooms follow the rights in force. A
 * connection authenticated by the cookie must come from the console's origin (api/origin.ts).
 */
import type { Server as HttpServer } from 'node:http';
import { Server, type ServerOptions, type Socket } from 'socket.io';
import type { Clock, Timer } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import { instant } from '../../kernel/time.ts';
import { can, dispatchCommunities, visibleGrids } from '../access.ts';
import type { Alert } from '../alerts/model.ts';
import { SESSION_COOKIE } from '../api/app.ts';
import { crossOriginRefusal, type OriginPolicy } from '../api/origin.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../api/types.ts';
import type { Auth } from '../auth.ts';
import type { Bus } from '../bus.ts';
import { type Channel, UNREACHABLE_PAGE, Unreachable } from '../notify/notifier.ts';
import type { Staff } from '../registry.ts';
import type { Store } from '../store/store.ts';

interface SocketData {
  staff: Staff;
  /** The login token this connection authenticated with (memory only), re-checked on every change. */
  token: string;
  /** When its session ends: the connection is checked again then (and closed). */
  expiry: Timer | null;
  /** Dispatch roles: the communities whose alerts they follow; null = all. Responders: unused. */
  communities: string[] | null;
}
type LiveSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

export interface LiveDeps {
  httpServer: HttpServer;
  auth: Auth;
  store: Store;
  bus: Bus;
  log: Logger;
  /** A page acknowledged a notification: the channel's own word that it reached the person (NOTIFY-02). */
  onReceipt?: (alertId: string, staffId: string, channel: string) => void;
  clock: Clock;
  /** The console's origin, for connections authenticated by the cookie. */
  origin?: OriginPolicy;
  /** Counts a connection refused as coming from another origin. */
  onCrossOrigin?: () => void;
  /** socket.io adapter: live events across dispatcher instances (CLU-04, cluster/live-relay.ts). */
  adapter?: ServerOptions['adapter'];
}

/** How long a notification waits for a page's acknowledgement before it counts as sent only. */
const RECEIPT_WAIT_MS = 30_000;

/** What the dispatch-screen notices may emit (events without acknowledgements). */
type NoticeEvent = 'dutyGap' | 'handover' | 'responderUnreachable';
interface DispatchNotices {
  emit<Ev extends NoticeEvent>(ev: Ev, ...args: Parameters<ServerToClientEvents[Ev]>): boolean;
}

const ALL = 'alerts:all';
const DISPATCH = 'dispatch';
const communityRoom = (c: string) => `community:${c}`;
const gridRoom = (g: string) => `grid:${g}`;
const staffRoom = (s: string) => `staff:${s}`;

export class LiveServer {
  private io:
    | Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>
    | undefined;
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly deps: LiveDeps) {}

  start(): void {
    const io = new Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>(
      this.deps.httpServer,
      {
        serveClient: false,
        path: '/socket.io',
        ...(this.deps.adapter ? { adapter: this.deps.adapter } : {}),
      },
    );
    this.io = io;
    io.use((socket, next) => {
      const given = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      const bearer = typeof given === 'string' ? given : undefined;
      const token = bearer ?? cookieToken(socket.handshake.headers.cookie);
      // SPEC §8: a page of another origin must not ride on the console's cookie (the WebSocket upgrade
      // carries it whatever SameSite says for another port). A token given explicitly is not a forgery.
      // Long-polling is the exception when it carries neither Origin nor Sec-Fetch-Site (a same-origin GET
      // of an older browser): another origin's page could make that request but never read its answers
      // (same-origin policy; no CORS here), whereas a WebSocket always carries Origin.
      const h = socket.handshake.headers;
      const polling = socket.conn.transport.name === 'polling';
      const unmarked = h.origin === undefined && h['sec-fetch-site'] === undefined;
      if (!bearer && token && !(polling && unmarked)) {
        const why = crossOriginRefusal(h, this.deps.origin ?? { publicOrigins: [] });
        if (why) {
          this.deps.onCrossOrigin?.();
          this.deps.log.warn({ why }, 'cross-origin live connection refused');
          return next(new Error('cross_origin'));
        }
      }
      this.deps.auth
        .session(token)
        .then(async (session) => {
          if (!session || !token) return next(new Error('unauthenticated'));
          socket.data.staff = session.staff;
          socket.data.token = token;
          socket.data.expiry = null;
          socket.data.communities = await this.communitiesOf(session.staff);
          next();
          // After next(): the connection exists and its disconnect handler cancels the timer.
          this.armExpiry(socket, session.expiresAt);
        })
        .catch((e: unknown) => next(e as Error));
    });
    io.on('connection', (socket: LiveSocket) => this.onConnection(socket));
    this.unsubscribe.push(
      this.deps.bus.on('alertChanged', ({ alert, action }) => {
        // Dispatch screens of the community, the grid's responders, and the assignee wherever they are
        // (cover from another grid). One emit to several rooms reaches each socket once.
        const rooms = [ALL, communityRoom(alert.community), gridRoom(alert.gridId)];
        if (alert.assigneeId) rooms.push(staffRoom(alert.assigneeId));
        io.to(rooms).emit('alert', { alert, action });
      }),
      this.deps.bus.on('channelHealth', (h) => {
        io.to(DISPATCH).emit('channelHealth', h);
      }),
      this.deps.bus.on('systemHealth', (h) => {
        io.to(DISPATCH).emit('systemHealth', h);
      }),
      this.deps.bus.on('dutyGap', (r) => {
        void this.toDispatchScreens((inScope, s) =>
          s.emit('dutyGap', { ...r, grids: r.grids.filter((g) => inScope(g.gridId)) }),
        );
      }),
      this.deps.bus.on('handover', (r) => {
        void this.toDispatchScreens((inScope, s) =>
          s.emit('handover', { ...r, items: r.items.filter((i) => inScope(i.gridId)) }),
        );
        // Responders see the part of the list for their grids.
        const grids = new Set(r.items.map((i) => i.gridId));
        for (const g of grids)
          io.to(gridRoom(g))
            .except(DISPATCH)
            .emit('handover', { ...r, items: r.items.filter((i) => i.gridId === g) });
      }),
      this.deps.bus.on('responderUnreachable', (u) => {
        void this.toDispatchScreens((inScope, s) => {
          if (inScope(u.gridId)) s.emit('responderUnreachable', u);
        });
      }),
      this.deps.bus.on('arrivalSuggested', ({ alert }) => {
        const p = {
          alertId: alert.id,
          householdId: alert.householdId,
          doorAt: alert.arrivalSuggestedAt ?? 0,
          alert,
        };
        const rooms = [ALL, communityRoom(alert.community)];
        if (alert.assigneeId) rooms.push(staffRoom(alert.assigneeId));
        io.to(rooms).emit('arrivalSuggested', p);
      }),
      this.deps.bus.on('delivery', (d) => {
        if (!d.ok)
          io.to(DISPATCH).emit('delivery', {
            alertId: d.alertId,
            channel: d.channel,
            ok: d.ok,
            error: d.error,
          });
      }),
    );
  }

  /**
   * Ends the live connections whose session no longer authenticates: ended outside this process (npm run
   * staff:reset-password on the same data folder) or expired. The page then asks its person to log in.
   * Returns how many were ended.
   */
  async endStaleSessions(): Promise<number> {
    const io = this.io;
    if (!io) return 0;
    let ended = 0;
    for (const socket of await io.fetchSockets()) {
      if (await this.deps.auth.authenticate(socket.data.token)) continue;
      socket.disconnect(true);
      ended++;
    }
    return ended;
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    const io = this.io;
    this.io = undefined;
    if (io) {
      io.disconnectSockets(true);
      // io.close() would also close the shared HTTP server; the service closes that itself.
      io.removeAllListeners();
    }
  }

  /**
   * Checks every live connection against the sessions and rights in force now (after any change of anyone's
   * rights: a desk's scope also depends on who covers what): an ended session is disconnected, the others
   * are re-scoped in place (rooms left and joined, `scope` sent again).
   */
  async recheck(): Promise<{ closed: number; rescoped: number }> {
    const io = this.io;
    if (!io) return { closed: 0, rescoped: 0 };
    let closed = 0;
    let rescoped = 0;
    for (const socket of [...io.of('/').sockets.values()] as LiveSocket[]) {
      if (await this.recheckOne(socket)) rescoped++;
      else closed++;
    }
    return { closed, rescoped };
  }

  /** True when the connection stays (re-scoped), false when its session ended and it was closed. */
  private async recheckOne(socket: LiveSocket): Promise<boolean> {
    const session = await this.deps.auth.session(socket.data.token);
    if (!socket.connected) return false;
    if (!session) {
      this.deps.log.info({ staffId: socket.data.staff.id }, 'live connection closed: its session ended');
      socket.disconnect(true);
      return false;
    }
    socket.data.staff = session.staff;
    socket.data.communities = await this.communitiesOf(session.staff);
    const want = new Set([socket.id, ...this.roomsOf(socket)]);
    for (const r of [...socket.rooms]) if (!want.has(r)) void socket.leave(r);
    for (const r of want) if (!socket.rooms.has(r)) void socket.join(r);
    this.emitScope(socket);
    return true;
  }

  private armExpiry(socket: LiveSocket, expiresAt: number): void {
    socket.data.expiry?.cancel();
    socket.data.expiry = this.deps.clock.at(instant(expiresAt), () => {
      void this.recheckOne(socket).catch((e: unknown) => {
        this.deps.log.error({ err: e }, 'session expiry check failed; closing the connection');
        socket.disconnect(true);
      });
    });
  }

  channel(): Channel {
    return {
      name: 'socket',
      send: async (staffId, p) => {
        const io = this.io;
        if (!io || !staffId) throw new Error('live server not running');
        const sockets = await io.in(staffRoom(staffId)).fetchSockets();
        if (sockets.length === 0) throw new Unreachable(UNREACHABLE_PAGE);
        const notice = {
          alertId: p.alertId,
          householdId: p.householdId,
          address: p.address,
          rule: p.rule,
          reason: p.reason,
          severity: p.severity,
          explanation: p.explanation,
        };
        // Sent once the emit leaves; delivered when one of the person's pages acknowledges it.
        io.to(staffRoom(staffId))
          .timeout(RECEIPT_WAIT_MS)
          .emit('notification', notice, (_err: Error | null, acks: true[]) => {
            if (acks?.length) this.deps.onReceipt?.(p.alertId, staffId, 'socket');
          });
      },
    };
  }

  /** The rooms a connection belongs in for the rights it has now (see the file comment). */
  private roomsOf(socket: LiveSocket): string[] {
    const staff = socket.data.staff;
    const rooms = [staffRoom(staff.id)];
    const grids = visibleGrids(staff);
    if (grids === null) {
      rooms.push(DISPATCH);
      const communities = socket.data.communities;
      if (communities === null) rooms.push(ALL);
      else rooms.push(...communities.map(communityRoom));
    } else rooms.push(...grids.map(gridRoom));
    return rooms;
  }

  private emitScope(socket: LiveSocket): void {
    const grids = visibleGrids(socket.data.staff);
    socket.emit('scope', { communities: grids === null ? socket.data.communities : null, gridIds: grids });
  }

  private onConnection(socket: LiveSocket): void {
    const staff = socket.data.staff;
    for (const r of this.roomsOf(socket)) void socket.join(r);
    this.emitScope(socket);
    socket.on('disconnect', () => socket.data.expiry?.cancel());
    socket.on('catchup', (since, ack) => {
      if (typeof since !== 'number' || typeof ack !== 'function') return;
      void this.catchup(socket, since).then(ack, (e: unknown) => {
        this.deps.log.error({ err: e }, 'catch-up failed');
        ack({ changeSeq: since, count: 0 });
      });
    });
    this.deps.log.debug(
      { staffId: staff.id, dispatch: can(staff, 'alerts.read.all') },
      'live client connected',
    );
  }

  /**
   * A notice for the dispatch screens (duty gaps, handover), each narrowed to its communities: one socket
   * may follow several, so each gets one report of its own rather than one per community room.
   */
  private async toDispatchScreens(
    send: (inScope: (gridId: string) => boolean, socket: DispatchNotices) => void,
  ): Promise<void> {
    const io = this.io;
    if (!io) return;
    try {
      const community = new Map((await this.deps.store.listGrids()).map((g) => [g.id, g.community]));
      for (const s of await io.in(DISPATCH).fetchSockets()) {
        const mine = s.data.communities;
        // A remote socket's emit is typed for acknowledgements from several sockets; these notices take none.
        send(
          (gridId) => mine === null || mine.includes(community.get(gridId) ?? ''),
          s as unknown as DispatchNotices,
        );
      }
    } catch (e) {
      this.deps.log.error({ err: e }, 'dispatch notice not sent');
    }
  }

  /** Dispatch roles follow the communities of the grids they cover (access.ts dispatchCommunities). */
  private async communitiesOf(staff: Staff): Promise<string[] | null> {
    return dispatchCommunities(staff, await this.deps.store.listGrids(), await this.deps.store.listStaff());
  }

  private async catchup(socket: LiveSocket, since: number): Promise<{ changeSeq: number; count: number }> {
    const grids = visibleGrids(socket.data.staff);
    const communities = socket.data.communities;
    // The same scope as the rooms: a dispatcher's communities, a responder's grids, and one's own alerts.
    const inScope = (a: Alert) =>
      a.assigneeId === socket.data.staff.id ||
      (grids === null ? communities === null || communities.includes(a.community) : grids.includes(a.gridId));
    let cursor = since;
    let count = 0;
    for (;;) {
      const page = await this.deps.store.alertChangesSince(cursor, 500);
      for (const a of page) {
        if (inScope(a)) {
          socket.emit('alert', { alert: a, action: 'catchup' });
          count++;
        }
        cursor = a.changeSeq;
      }
      if (page.length < 500) break;
    }
    return { changeSeq: cursor, count };
  }
}

function cookieToken(cookie: string | undefined): string | undefined {
  if (!cookie) return undefined;
  for (const part of cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === SESSION_COOKIE) return decodeURIComponent(v.join('='));
  }
  return undefined;
}
