/**
 * The gateway's doors (EDGE-05): plain MQTT on TCP (1883 by default), MQTT over TLS and MQTT over
 * WebSocket when configured. Every socket gets `noDelay`: with Nagle on, QoS 0 latency p99 is ~30 ms here,
 * without ~2 ms (FACTS.md). Each connection is handed over as a Duplex with its remote address.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';

export type Connection = Duplex & { remoteAddress?: string };

export interface ListenerOptions {
  tcp: { port: number; host: string };
  tls?: { port: number; host: string; certFile: string; keyFile: string };
  ws?: { port: number; host: string; path?: string };
  /** Largest WebSocket message accepted (one MQTT packet per frame is the usual case). */
  maxFrameBytes: number;
}

export class Listeners {
  private tcp: Server | undefined;
  private tls: TlsServer | undefined;
  private http: HttpServer | undefined;
  private wss: WebSocketServer | undefined;

  constructor(
    private readonly opts: ListenerOptions,
    private readonly onConnection: (c: Connection) => void,
  ) {}

  get ports(): { tcp: number; tls: number; ws: number } {
    const port = (s: Server | undefined) => (s?.address() as AddressInfo | null)?.port ?? 0;
    return { tcp: port(this.tcp), tls: port(this.tls), ws: port(this.http) };
  }

  async start(): Promise<void> {
    const { opts } = this;
    this.tcp = createServer({ noDelay: true }, (socket) => this.onConnection(socket));
    await listen(this.tcp, opts.tcp.port, opts.tcp.host, 'tcp');
    if (opts.tls) {
      const tls = createTlsServer(
        { cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile), noDelay: true },
        (socket) => {
          socket.setNoDelay(true);
          this.onConnection(socket);
        },
      );
      // A failed handshake is the client's problem, not ours: it must not surface as an unhandled error.
      tls.on('tlsClientError', () => {});
      this.tls = tls;
      await listen(tls, opts.tls.port, opts.tls.host, 'tls');
    }
    if (opts.ws) {
      const http = createHttpServer();
      http.on('connection', (s) => s.setNoDelay(true));
      const wss = new WebSocketServer({
        server: http,
        path: opts.ws.path,
        maxPayload: opts.maxFrameBytes,
        // MQTT over WebSocket uses the `mqtt` subprotocol (MQTT 3.1.1 §6).
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false),
      });
      wss.on('connection', (ws, req) => {
        const stream: Connection = createWebSocketStream(ws);
        stream.remoteAddress = req.socket.remoteAddress;
        stream.on('error', () => stream.destroy());
        this.onConnection(stream);
      });
      this.http = http;
      this.wss = wss;
      await listen(http, opts.ws.port, opts.ws.host, 'ws');
    }
  }

  async stop(): Promise<void> {
    const close = (s: Server | undefined) =>
      s?.listening ? new Promise<void>((r) => s.close(() => r())) : Promise.resolve();
    for (const c of this.wss?.clients ?? []) c.terminate();
    this.wss?.close();
    this.http?.closeAllConnections();
    await Promise.all([close(this.tcp), close(this.tls), close(this.http)]);
  }
}

/** Listens; a failure names the listener (`tcp`, `tls`, `ws`) so the start can name the variable. */
function listen(server: Server, port: number, host: string, listener: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(Object.assign(e, { listener }));
    server.once('error', onError);
    // A deep accept queue (the kernel caps it at net.core.somaxconn): with Node's default of 511 a login
    // flood filled it, and a valid device's SYN waited for a retransmission (1 s, then 3 s).
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
