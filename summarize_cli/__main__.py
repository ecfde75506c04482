from summarize_cli.entry import main

main()
