from node.main import run

run()
