from summarize_cli.cli import main

main()
