// Just enough typing for our uses of the bittorrent-tracker npm package (server in benches,
// client in third-party tests).
declare module 'bittorrent-tracker/server' {
  import {EventEmitter} from 'node:events'
  export default class Server extends EventEmitter {
    constructor(opts?: Record<string, unknown>)
    listen(port: number | Record<string, number>, hostname?: string | Record<string, string>, cb?: () => void): void
    close(cb?: () => void): void
  }
}

declare module 'bittorrent-tracker' {
  import {EventEmitter} from 'node:events'
  export default class Client extends EventEmitter {
    constructor(opts: Record<string, unknown>)
    start(opts?: Record<string, unknown>): void
    stop(opts?: Record<string, unknown>): void
    complete(opts?: Record<string, unknown>): void
    update(opts?: Record<string, unknown>): void
    scrape(opts?: Record<string, unknown>): void
    destroy(cb?: () => void): void
    static scrape(opts: Record<string, unknown>, cb: (err: Error | null, data: unknown) => void): void
  }
}
