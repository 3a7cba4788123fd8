import sys

from kubectl_gitops_run.cli import main

sys.exit(main())
