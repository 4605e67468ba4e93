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
 */
import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import type { Logger } from '../../kernel/log.ts';
import { can, dispatchCommunities, visibleGrids } from '../access.ts';
import type { Alert } from '../alerts/model.ts';
import { SESSION_COOKIE } from '../api/app.ts';
import type { ClientToServerEvents, ServerToClientEvents } from '../api/types.ts';
import type { Auth } from '../auth.ts';
import type { Bus } from '../bus.ts';
import { type Channel, UNREACHABLE_PAGE, Unreachable } from '../notify/notifier.ts';
import type { Staff } from '../registry.ts';
import type { Store } from '../store/store.ts';

interface SocketData {
  staff: Staff;
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
      },
    );
    this.io = io;
    io.use((socket, next) => {
      const token =
        (socket.handshake.auth as { token?: string } | undefined)?.token ??
        cookieToken(socket.handshake.headers.cookie);
      this.deps.auth
        .authenticate(token)
        .then(async (staff) => {
          if (!staff) return next(new Error('unauthenticated'));
          socket.data.staff = staff;
          socket.data.communities = await this.communitiesOf(staff);
          next();
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

  /** The socket.io notification channel: reaches every open page of the staff member. */
  /** Disconnects every live connection of one staff member; their pages reconnect and authenticate again. */
  disconnectStaff(staffId: string): void {
    this.io?.in(staffRoom(staffId)).disconnectSockets(true);
  }

  channel(): Channel {
    return {
      name: 'socket',
      send: async (staffId, p) => {
        const io = this.io;
        if (!io || !staffId) throw new Error('live server not running');
        const sockets = await io.in(staffRoom(staffId)).fetchSockets();
        if (sockets.length === 0) throw new Unreachable(UNREACHABLE_PAGE);
        io.to(staffRoom(staffId)).emit('notification', {
          alertId: p.alertId,
          householdId: p.householdId,
          address: p.address,
          rule: p.rule,
          reason: p.reason,
          severity: p.severity,
          explanation: p.explanation,
        });
      },
    };
  }

  private onConnection(socket: LiveSocket): void {
    const staff = socket.data.staff;
    void socket.join(staffRoom(staff.id));
    const grids = visibleGrids(staff);
    if (grids === null) {
      void socket.join(DISPATCH);
      const communities = socket.data.communities;
      if (communities === null) void socket.join(ALL);
      else for (const c of communities) void socket.join(communityRoom(c));
    } else for (const g of grids) void socket.join(gridRoom(g));
    socket.emit('scope', { communities: grids === null ? socket.data.communities : null, gridIds: grids });
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
    send: (inScope: (gridId: string) => boolean, socket: { emit: LiveSocket['emit'] }) => void,
  ): Promise<void> {
    const io = this.io;
    if (!io) return;
    try {
      const community = new Map((await this.deps.store.listGrids()).map((g) => [g.id, g.community]));
      for (const s of await io.in(DISPATCH).fetchSockets()) {
        const mine = s.data.communities;
        send((gridId) => mine === null || mine.includes(community.get(gridId) ?? ''), s);
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
