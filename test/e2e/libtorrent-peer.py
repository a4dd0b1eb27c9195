"""One libtorrent-rasterbar peer (the engine of qBittorrent and Deluge) for the end-to-end tests.

usage: libtorrent-peer.py seed|leech TORRENT DIR LISTEN_HOST PORT

DHT, local peer discovery, UPnP and NAT-PMP are off: peers can only come from the tracker.
Prints tracker and error alerts and a status line every 2 s; a leecher exits 0 once it has the
whole file (checked against the torrent's piece hashes).
"""
import sys
import time

import libtorrent as lt

mode, torrent, save, host, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
session = lt.session({
    'listen_interfaces': f'[{host}]:{port}' if ':' in host else f'{host}:{port}',
    'enable_dht': False,
    'enable_lsd': False,
    'enable_upnp': False,
    'enable_natpmp': False,
    'alert_mask': lt.alert.category_t.tracker_notification | lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
})
handle = session.add_torrent({
    'ti': lt.torrent_info(torrent),
    'save_path': save,
    'flags': lt.torrent_flags.seed_mode if mode == 'seed' else 0,
})
last = 0.0
while True:
    for alert in session.pop_alerts():
        print(type(alert).__name__, alert.message(), flush=True)
    status = handle.status()
    if time.time() - last > 2:
        print(f'state={status.state} progress={status.progress:.3f} peers={status.num_peers}', flush=True)
        last = time.time()
    if mode == 'leech' and status.is_seeding:
        print('complete', flush=True)
        sys.exit(0)
    time.sleep(0.2)
