"""`python -m node`: the `shoal` CLI, or, as `python -m node proxy-worker`, the data-plane process an agent starts
for itself (node.proxyworker: not a command for operators, so not in the CLI; it imports none of the agent)."""

import sys

if sys.argv[1:] == ["proxy-worker"]:  # node.proxyworker.ARGUMENT (tests/unit/proxy/test_proxy_process.py runs it)
    from node.proxyworker import main

    main()
else:
    from node.main import run

    run()
