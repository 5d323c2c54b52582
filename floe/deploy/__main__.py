from floe.deploy.cli import app

app(prog_name="python -m floe.deploy")
