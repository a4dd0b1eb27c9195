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

export const ATTACKS: Attack[] = [
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
