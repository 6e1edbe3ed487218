from handler_lib import defer

import here


@defer
def handler(event, context):
    return {"id": here.forks_here.defer(event["n"])}
