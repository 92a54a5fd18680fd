from casemsg.cli import main

main()
