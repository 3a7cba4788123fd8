from kubectl_gitops_run.cli import main

main()
