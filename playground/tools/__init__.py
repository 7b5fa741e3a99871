"""What is built from components: the ladder, the live server, the command line.

The engine (``playground``) knows nothing of app servers or databases, and
``components`` know nothing of stories or sockets. The tools here sit on top
of both - they are the only code that imports ``components`` *and* runs whole
scenarios - so every import in the project runs one way:
``playground.tools`` -> ``components`` -> ``playground``.

* ``playground.tools.ladder`` - the scaling story, from 5 users to 1 million.
* ``playground.tools.live`` - a topology in real time behind hypercorn, with a dashboard.
* ``playground.tools.cli`` - ``playground`` / ``python -m playground``.
* ``playground.tools.progress`` - the progress bar the long runs share.
"""
