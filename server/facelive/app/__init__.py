"""The live web app: Flask (page + REST) and Socket.IO (live frames) on eventlet, over HTTPS.

    server.serve(settings)        run it: patch for eventlet, certificate, token, banner
    factory.create_app(settings, recognizer=None) -> (Flask app, SocketIO)
    live.py      Socket.IO events      worker.py    latest-frame queue, inference thread
    protocol.py  frame checks, replies recognizer.py what the worker calls (frames -> faces)
    api.py       REST under /api       web.py       the page and socket.io-client
    auth.py      access token          tls.py       self-signed certificate

Nothing is imported here: `serve` must patch the standard library for eventlet before Flask
and the rest are imported.
"""
