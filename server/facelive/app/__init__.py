"""The live web app: Flask (page + REST) and Socket.IO (live frames) on eventlet, over HTTPS.

    server.serve(settings)        run it: patch for eventlet, certificate, token, banner
    factory.create_app(settings, recognizer=None) -> (Flask app, SocketIO)
    live.py      Socket.IO events      worker.py    latest-frame queue, inference thread
    protocol.py  frame checks, replies api.py       REST under /api (the error boundary)
    live_recognizer.py  what the worker calls: its contract, loading it, describe()
    openapi.py   its OpenAPI document
    people.py    gallery operations    uploads.py   upload limits, reading multipart files
    capture.py   Capture Examples      state.py     what the handlers share
    auth.py      access token          tls.py       self-signed certificate
    web.py       the page and socket.io-client

Nothing is imported here: `serve` must patch the standard library for eventlet before Flask
and the rest are imported.
"""
