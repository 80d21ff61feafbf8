"""HTTP pieces shared by GRAVITY's web surfaces (the study app, the generator's OpenAI-compatible API and
compare page): security headers, CSRF, signed sessions and bearer tokens (:mod:`.security`), errors as HTTP
statuses (:mod:`.errors`), and an ASGI app served by uvicorn on a thread of a service (:mod:`.server`).

Needs the ``web`` extra (``gravity-core[web]``: Starlette, Jinja2, python-multipart, uvicorn).
"""
