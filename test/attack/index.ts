/** Every attack of the suite, in the order of issue 13's classes, then those that already held. */
import {ACCESS_LIST_ATTACKS} from './accesslist.js'
import {FILE_ATTACKS} from './files.js'
import {HELD_TCP_ATTACKS} from './held-tcp.js'
import {HELD_UDP_ATTACKS} from './held-udp.js'
import {MIXUP_ATTACKS} from './http-mixup.js'
import {PARSING_ATTACKS} from './http-parsing.js'
import {PIPELINING_ATTACKS} from './http-pipelining.js'
import {SLOT_ATTACKS} from './http-slots.js'
import type {Attack} from './suite.js'
import {TLS_STALL_ATTACKS} from './tls-stall.js'
import {MESH_ATTACKS} from './udp-mesh.js'
import {WS_CONTROL_ATTACKS} from './ws-control.js'
import {OFFER_ATTACKS} from './ws-offers.js'

const held = (a: Attack) => a.name.startsWith('held.')
const lenient = PARSING_ATTACKS.filter(a => !held(a))

/**
 * Plain HTTP goes through the batched I/O addon by default; every attack on it runs again on
 * Node's sockets (batched_io = false), the path TLS and other systems take.
 */
const onNodeIo = (attacks: Attack[]): Attack[] =>
  attacks
    .filter(a => a.server === 'http')
    .map(a => ({
      ...a,
      server: 'http node-io',
      run: ctx => {
        ctx.httpBatchedIo = false
        return a.run(ctx)
      },
    }))

const ALL: Attack[] = [
  ...MIXUP_ATTACKS, // 1
  ...PIPELINING_ATTACKS, // 2
  ...WS_CONTROL_ATTACKS, // 3
  ...TLS_STALL_ATTACKS, // 4
  ...SLOT_ATTACKS, // 5
  ...MESH_ATTACKS, // 6
  ...ACCESS_LIST_ATTACKS, // 7
  ...FILE_ATTACKS, // 8
  ...OFFER_ATTACKS, // 9
  ...lenient, // 10
  ...HELD_UDP_ATTACKS,
  ...PARSING_ATTACKS.filter(held),
  ...HELD_TCP_ATTACKS,
]

export const ATTACKS: Attack[] = [...ALL, ...onNodeIo(ALL)]
