from summarize_cli.cli.entry import main

main()
